<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

/**
 * What came of asking editgate: a decision, an outage (the only case $wgEditGateFailOpen
 * governs), or a fault (the wiki refuses).
 */
class Outcome {

	public const DECIDED = 'decided';
	public const OUTAGE = 'outage';
	public const FAULT = 'fault';

	/** @var string One of the constants */
	public $kind;
	/** @var Decision|null */
	public $decision;
	/** @var string Why there is no decision */
	public $why;

	/**
	 * @param string $kind
	 * @param Decision|null $decision
	 * @param string $why
	 */
	private function __construct( string $kind, ?Decision $decision, string $why ) {
		$this->kind = $kind;
		$this->decision = $decision;
		$this->why = $why;
	}

	/**
	 * @param Decision $decision
	 * @return self
	 */
	public static function decided( Decision $decision ): self {
		return new self( self::DECIDED, $decision, '' );
	}

	/**
	 * editgate could not be reached, did not answer in time, or failed (5xx).
	 *
	 * @param string $why
	 * @return self
	 */
	public static function outage( string $why ): self {
		return new self( self::OUTAGE, null, $why );
	}

	/**
	 * editgate (or whatever answered at $wgEditGateUrl) gave an answer that cannot be used.
	 *
	 * @param string $why
	 * @return self
	 */
	public static function fault( string $why ): self {
		return new self( self::FAULT, null, $why );
	}
}
