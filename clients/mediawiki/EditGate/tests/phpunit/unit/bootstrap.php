<?php
// The classes under test need no MediaWiki: load them directly, with stand-ins for the two
// MediaWiki pieces they touch (the PSR-3 logger interface comes with PHPUnit's Debian
// package's dependencies only sometimes, so a minimal one is defined when missing).
foreach ( [ 'CheckPayload', 'Decision', 'Reputation', 'Outcome', 'Transport', 'TransportResponse', 'StreamTransport', 'EditGateClient',
	'RequestIntent', 'GatedActions' ] as $class ) {
	require_once __DIR__ . "/../../../includes/$class.php";
}
if ( !interface_exists( 'Psr\Log\LoggerInterface' ) ) {
	require_once __DIR__ . '/PsrLog.php';
}
require_once __DIR__ . '/TestLogger.php';
