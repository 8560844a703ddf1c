<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

use InvalidArgumentException;

/**
 * Builds the body of `POST /v1/check`: a `CheckRequest` in the proto3 JSON mapping that
 * editgate's HTTP port reads, bounded to what editgate accepts.
 *
 * Pure PHP with no MediaWiki dependency, so the mapping is unit-tested on its own
 * (tests/phpunit/unit); Gate gathers the facts from MediaWiki and hands them in by name.
 */
class CheckPayload {

	/** editgate's `account.kind` enum names. */
	public const KIND_ANONYMOUS = 'ACCOUNT_KIND_ANONYMOUS';
	public const KIND_TEMPORARY = 'ACCOUNT_KIND_TEMPORARY';
	public const KIND_REGISTERED = 'ACCOUNT_KIND_REGISTERED';

	/** The account kinds as policies, logs and message keys name them. */
	public const NAME_ANONYMOUS = 'anonymous';
	public const NAME_TEMPORARY = 'temporary';
	public const NAME_REGISTERED = 'registered';

	/**
	 * The kind of an account. A temporary account is checked first: it is also "registered"
	 * to MediaWiki, and must never be sent as a registered account.
	 *
	 * @param bool $temporary The account is a temporary one (IP masking)
	 * @param bool $registered The account is registered (temporary ones included)
	 * @return string One of the NAME_ constants
	 */
	public static function kindOf( bool $temporary, bool $registered ): string {
		if ( $temporary ) {
			return self::NAME_TEMPORARY;
		}
		return $registered ? self::NAME_REGISTERED : self::NAME_ANONYMOUS;
	}

	/** NAME_ constant => KIND_ constant. */
	private const WIRE = [
		self::NAME_ANONYMOUS => self::KIND_ANONYMOUS,
		self::NAME_TEMPORARY => self::KIND_TEMPORARY,
		self::NAME_REGISTERED => self::KIND_REGISTERED,
	];

	/**
	 * The most forwarded-for entries sent by default: editgate's own default
	 * `max_forwarded_for`. $wgEditGateMaxForwardedFor must not exceed the server's setting,
	 * or a long header turns into a refused request.
	 */
	public const MAX_FORWARDED_FOR = 32;

	/** editgate's longest group or right name, bytes. */
	public const MAX_NAME_BYTES = 255;
	/** The most groups or rights sent. */
	public const MAX_NAMES = 500;
	/** The longest request id sent, bytes. */
	public const MAX_REQUEST_ID_BYTES = 128;

	/**
	 * When a registered account's registration time is unknown. MediaWiki did not record
	 * registration before 2005; its own autopromote counts such an account from the Unix
	 * epoch (as old), and so does this extension, so a long-standing editor is not judged as
	 * brand new. Never for a temporary account: one without a registration time was created
	 * in this very request, and is sent without one (editgate then counts it as brand new).
	 */
	public const UNKNOWN_REGISTRATION = '1970-01-01T00:00:00Z';

	/** The facts build() takes, with their defaults. */
	private const FACTS = [
		'ip' => null,
		'forwardedFor' => [],
		'wiki' => null,
		'action' => null,
		'kind' => null,
		'groups' => [],
		'rights' => [],
		'editCount' => 0,
		'registration' => null,
		'emailConfirmed' => false,
		'requestId' => '',
		'probe' => false,
		'maxForwardedFor' => self::MAX_FORWARDED_FOR,
	];

	/**
	 * @param array $facts By name:
	 *   - ip (string): the client address, after MediaWiki's trusted-proxy rules
	 *   - forwardedFor (string[]): the untrusted part of X-Forwarded-For
	 *     ({@see self::untrustedForwardedFor})
	 *   - wiki (string): the wiki id; action (string): the permission action
	 *   - kind (string): one of the NAME_ constants
	 *   - groups, rights (string[]): of the account
	 *   - editCount (int|null): null (as for anonymous users) sends 0
	 *   - registration (string|null|false): a MediaWiki timestamp (YYYYMMDDHHMMSS, UTC), or
	 *     null/false when unknown
	 *   - emailConfirmed (bool); requestId (string): echoed back, for log correlation
	 *   - probe (bool): nothing will be saved (a view, a permission test), not an attempt
	 *   - maxForwardedFor (int): the most forwarded-for entries editgate accepts
	 * @return array The request, ready for json_encode()
	 * @throws InvalidArgumentException On a fact of an unknown name, or a required one
	 *   missing (a bug in the caller)
	 */
	public static function build( array $facts ): array {
		$unknown = array_diff_key( $facts, self::FACTS );
		if ( $unknown ) {
			throw new InvalidArgumentException( 'unknown facts: ' . implode( ', ', array_keys( $unknown ) ) );
		}
		$f = $facts + self::FACTS;
		foreach ( [ 'ip', 'wiki', 'action', 'kind' ] as $required ) {
			if ( !is_string( $f[$required] ) ) {
				throw new InvalidArgumentException( "missing fact: $required" );
			}
		}
		$kind = self::WIRE[$f['kind']] ?? null;
		if ( $kind === null ) {
			throw new InvalidArgumentException( "unknown account kind: {$f['kind']}" );
		}
		$account = [
			'kind' => $kind,
			'groups' => self::names( $f['groups'] ),
			'rights' => self::names( $f['rights'] ),
			// proto3 JSON writes uint64 as a string; editgate takes either, but never ''.
			'editCount' => (string)max( 0, (int)$f['editCount'] ),
			'emailConfirmed' => (bool)$f['emailConfirmed'],
		];
		$registeredAt = self::rfc3339( $f['registration'] );
		if ( $kind === self::KIND_REGISTERED ) {
			$account['registeredAt'] = $registeredAt ?? self::UNKNOWN_REGISTRATION;
		} elseif ( $kind === self::KIND_TEMPORARY && $registeredAt !== null ) {
			$account['registeredAt'] = $registeredAt;
		}
		// The entries nearest the wiki are kept: the ones further left are the client's own
		// words anyway. A probe sends them too: it is decided on the attempt's facts.
		$max = max( 0, (int)$f['maxForwardedFor'] );
		$payload = [
			'ip' => $f['ip'],
			'forwardedFor' => $max === 0 ? [] : array_slice( array_values( $f['forwardedFor'] ), -$max ),
			'wiki' => $f['wiki'],
			'action' => $f['action'],
			'account' => $account,
			'requestId' => self::cut( (string)$f['requestId'], self::MAX_REQUEST_ID_BYTES ),
		];
		if ( $f['probe'] ) {
			$payload['probe'] = true;
		}
		return $payload;
	}

	/**
	 * The part of an X-Forwarded-For header MediaWiki does not trust, in order: its entries
	 * that are IP addresses, less the proxies MediaWiki trusts (`$wgCdnServers`, ...) and the
	 * client address itself. Nothing when the client address is on `$wgProxyWhitelist`, as
	 * MediaWiki then applies no block to the chain either. A trusted CDN whose address sits on
	 * a hosting list must not make every edit through it look like one from that list.
	 *
	 * @param string|null $header The raw header
	 * @param string $clientIp The client address MediaWiki settled on
	 * @param callable(string):bool $isTrustedProxy
	 * @param string[] $proxyWhitelist $wgProxyWhitelist
	 * @return string[]
	 */
	public static function untrustedForwardedFor(
		?string $header,
		string $clientIp,
		callable $isTrustedProxy,
		array $proxyWhitelist = []
	): array {
		$client = self::canonical( $clientIp );
		foreach ( $proxyWhitelist as $listed ) {
			if ( self::canonical( (string)$listed ) === $client ) {
				return [];
			}
		}
		$out = [];
		foreach ( self::addresses( $header ) as $entry ) {
			if ( self::canonical( $entry ) !== $client && !$isTrustedProxy( $entry ) ) {
				$out[] = $entry;
			}
		}
		return $out;
	}

	/**
	 * The addresses of an X-Forwarded-For header, in order. Entries that are not IP
	 * addresses (`unknown`, obfuscated identifiers, garbage) are dropped rather than sent,
	 * since editgate refuses a request with a malformed address.
	 *
	 * @param string|null $header
	 * @return string[]
	 */
	public static function addresses( ?string $header ): array {
		if ( $header === null || trim( $header ) === '' ) {
			return [];
		}
		$out = [];
		foreach ( explode( ',', $header ) as $entry ) {
			$entry = trim( $entry );
			// Bracketed IPv6 with or without a port: [2001:db8::1]:443
			if ( preg_match( '/^\[([0-9a-fA-F:.]+)\](?::\d+)?$/', $entry, $m ) ) {
				$entry = $m[1];
			} elseif ( preg_match( '/^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/', $entry, $m ) ) {
				// IPv4 with a port: 192.0.2.1:8080
				$entry = $m[1];
			}
			if ( filter_var( $entry, FILTER_VALIDATE_IP ) !== false ) {
				$out[] = $entry;
			}
		}
		return $out;
	}

	/**
	 * A MediaWiki timestamp (YYYYMMDDHHMMSS, UTC) as RFC 3339; null when absent or not a
	 * timestamp.
	 *
	 * @param string|null|false $ts
	 * @return string|null
	 */
	public static function rfc3339( $ts ): ?string {
		if ( !is_string( $ts ) || !preg_match( '/^\d{14}$/', $ts ) ) {
			return null;
		}
		$dt = \DateTimeImmutable::createFromFormat( '!YmdHis', $ts, new \DateTimeZone( 'UTC' ) );
		if ( $dt === false || $dt->format( 'YmdHis' ) !== $ts ) {
			return null;
		}
		return $dt->format( 'Y-m-d\TH:i:s\Z' );
	}

	/**
	 * Group or right names as editgate takes them: strings, at most MAX_NAMES of them, each
	 * cut to MAX_NAME_BYTES.
	 *
	 * @param array $names
	 * @return string[]
	 */
	private static function names( array $names ): array {
		$out = [];
		foreach ( array_slice( array_values( $names ), 0, self::MAX_NAMES ) as $n ) {
			$out[] = self::cut( (string)$n, self::MAX_NAME_BYTES );
		}
		return $out;
	}

	/**
	 * At most $bytes bytes, never cutting a UTF-8 sequence in two (invalid UTF-8 is left for
	 * json_encode to substitute).
	 *
	 * @param string $s
	 * @param int $bytes
	 * @return string
	 */
	private static function cut( string $s, int $bytes ): string {
		if ( strlen( $s ) <= $bytes ) {
			return $s;
		}
		return mb_strcut( $s, 0, $bytes, 'UTF-8' );
	}

	/**
	 * An address in one spelling (IPv6 compressed, IPv4-mapped as IPv4), or the input when
	 * it is not an address.
	 *
	 * @param string $ip
	 * @return string
	 */
	private static function canonical( string $ip ): string {
		$packed = @inet_pton( trim( $ip ) );
		if ( $packed === false ) {
			return trim( $ip );
		}
		if ( strlen( $packed ) === 16 && substr( $packed, 0, 12 ) === str_repeat( "\0", 10 ) . "\xff\xff" ) {
			$packed = substr( $packed, 12 );
		}
		return (string)inet_ntop( $packed );
	}
}
