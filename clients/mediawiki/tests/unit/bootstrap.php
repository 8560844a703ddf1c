<?php
// The classes under test need no MediaWiki: load them directly.
require_once __DIR__ . '/../../EditGate/includes/CheckPayload.php';
require_once __DIR__ . '/../../EditGate/includes/Decision.php';
