"""The end-to-end test of the EditGate extension in a real MediaWiki (run by ../e2e)."""
