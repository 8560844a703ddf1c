<?php

use Psr\Log\LoggerInterface;

/**
 * Keeps what the code under test logs, as "level: message" with the context interpolated.
 */
class TestLogger implements LoggerInterface {

	/** @var string[] */
	public $lines = [];

	public function log( $level, $message, array $context = [] ) {
		$this->lines[] = "$level: " . preg_replace_callback( '/\{(\w+)\}/', static function ( $m ) use ( $context ) {
			return array_key_exists( $m[1], $context ) ? (string)$context[$m[1]] : $m[0];
		}, (string)$message );
	}

	public function emergency( $message, array $context = [] ) {
		$this->log( 'emergency', $message, $context );
	}

	public function alert( $message, array $context = [] ) {
		$this->log( 'alert', $message, $context );
	}

	public function critical( $message, array $context = [] ) {
		$this->log( 'critical', $message, $context );
	}

	public function error( $message, array $context = [] ) {
		$this->log( 'error', $message, $context );
	}

	public function warning( $message, array $context = [] ) {
		$this->log( 'warning', $message, $context );
	}

	public function notice( $message, array $context = [] ) {
		$this->log( 'notice', $message, $context );
	}

	public function info( $message, array $context = [] ) {
		$this->log( 'info', $message, $context );
	}

	public function debug( $message, array $context = [] ) {
		$this->log( 'debug', $message, $context );
	}

	/**
	 * @param string $level
	 * @return string[]
	 */
	public function at( string $level ): array {
		return array_values( array_filter( $this->lines, static function ( $l ) use ( $level ) {
			return strpos( $l, "$level: " ) === 0;
		} ) );
	}
}
