<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

use UnexpectedValueException;

/**
 * What Spur's feeds say about the client address (a `Reputation` of editgate's answer): the
 * data IPReputation asks ipoid for, here in the answer the permission check already has.
 *
 * Pure PHP with no MediaWiki dependency (unit-tested in tests/phpunit/unit).
 */
class Reputation {

	/** The lists of strings: each field of the answer, and the property of the same name. */
	private const LISTS = [
		'sources',
		'tunnelOperators',
		'tunnelTypes',
		'risks',
		'clientBehaviors',
		'clientProxies',
		'clientTypes',
		'infrastructure',
		'services',
	];

	/** @var string[] The feeds (`spur-feed` sources) that hold the address */
	public $sources = [];
	/** @var string[] Operators of the tunnels through it, like NORD_VPN */
	public $tunnelOperators = [];
	/** @var string[] Their types: VPN, PROXY, TOR */
	public $tunnelTypes = [];
	/** @var string[] Risks, like CALLBACK_PROXY */
	public $risks = [];
	/** @var string[] What its clients do, like FILE_SHARING */
	public $clientBehaviors = [];
	/** @var string[] The proxy networks its clients belong to */
	public $clientProxies = [];
	/** @var string[] Its clients' device types, like MOBILE */
	public $clientTypes = [];
	/** @var int How many clients use it; 0 when unknown */
	public $clientCount = 0;
	/** @var string[] Its infrastructure, like DATACENTER */
	public $infrastructure = [];
	/** @var string[] Services it runs, like OPENVPN */
	public $services = [];

	/**
	 * Reads the `reputation` of a `CheckResponse` in proto3 JSON.
	 *
	 * @param mixed $json The field's value
	 * @return self
	 * @throws UnexpectedValueException When it is not a Reputation
	 */
	public static function fromArray( $json ): self {
		if ( !is_array( $json ) ) {
			throw new UnexpectedValueException( 'editgate answered a reputation that is not an object' );
		}
		$reputation = new self();
		foreach ( self::LISTS as $field ) {
			$reputation->$field = Decision::strings( $json, $field, "reputation.$field" );
		}
		// proto3 JSON: a uint32 is a number, and may be written as a string.
		$count = $json['clientCount'] ?? 0;
		if ( is_string( $count ) && ctype_digit( $count ) ) {
			$count = (int)$count;
		}
		if ( !is_int( $count ) || $count < 0 ) {
			throw new UnexpectedValueException( 'editgate answered a reputation.clientCount that is not a count' );
		}
		$reputation->clientCount = $count;
		return $reputation;
	}

	/**
	 * The reputation as editgate sends it, for fromArray() to read again.
	 *
	 * @return array
	 */
	public function toArray(): array {
		$out = [];
		foreach ( self::LISTS as $field ) {
			$out[$field] = $this->$field;
		}
		$out['clientCount'] = $this->clientCount;
		return $out;
	}
}
