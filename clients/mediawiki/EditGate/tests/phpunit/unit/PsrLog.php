<?php
// PSR-3's logger interface, for running the unit tests without MediaWiki's vendor directory
// (MediaWiki ships psr/log; Debian's phpunit package does not).
// phpcs:ignoreFile

namespace Psr\Log;

interface LoggerInterface {
	public function emergency( $message, array $context = [] );

	public function alert( $message, array $context = [] );

	public function critical( $message, array $context = [] );

	public function error( $message, array $context = [] );

	public function warning( $message, array $context = [] );

	public function notice( $message, array $context = [] );

	public function info( $message, array $context = [] );

	public function debug( $message, array $context = [] );

	public function log( $level, $message, array $context = [] );
}
