<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

/**
 * What one editgate call brought back: a complete HTTP answer (its status and body), or why
 * there was none.
 */
class TransportResponse {

	/** @var int The HTTP status; 0 when no complete answer arrived */
	public $code;
	/** @var string The body (of a complete answer; whatever arrived of an incomplete one) */
	public $body;
	/** @var string Why no complete answer arrived (no connection, a timeout); '' when one did */
	public $error;
	/** @var bool The answer was larger than Transport::MAX_RESPONSE_BYTES, and not read */
	public $tooLarge;
	/** @var string What arrived is not an HTTP answer (something else listens there); '' */
	public $garbled;

	private function __construct( int $code, string $body, string $error, bool $tooLarge, string $garbled = '' ) {
		$this->code = $code;
		$this->body = $body;
		$this->error = $error;
		$this->tooLarge = $tooLarge;
		$this->garbled = $garbled;
	}

	/**
	 * @param int $code
	 * @param string $body
	 * @return self A complete answer
	 */
	public static function answer( int $code, string $body ): self {
		return new self( $code, $body, '', false );
	}

	/**
	 * @param string $why
	 * @param string $partial Whatever arrived
	 * @return self No complete answer
	 */
	public static function failed( string $why, string $partial = '' ): self {
		return new self( 0, $partial, $why, false );
	}

	/**
	 * @param int $code The status, when it arrived
	 * @return self An answer over the size limit
	 */
	public static function tooLarge( int $code ): self {
		return new self( $code, '', '', true );
	}

	/**
	 * @param string $what What is wrong with it
	 * @return self An answer that is not HTTP
	 */
	public static function garbled( string $what ): self {
		return new self( 0, '', '', false, $what );
	}
}
