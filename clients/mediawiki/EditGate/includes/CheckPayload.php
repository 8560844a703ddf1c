<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

/**
 * Builds the body of `POST /v1/check`: a `CheckRequest` in the proto3 JSON mapping that
 * editgate's HTTP port reads.
 *
 * Pure PHP with no MediaWiki dependency, so the mapping is unit-tested on its own
 * (tests/unit); Hooks gathers the facts from MediaWiki and hands them in as plain values.
 */
class CheckPayload {

	/** editgate's `account.kind` enum names. */
	public const KIND_ANONYMOUS = 'ACCOUNT_KIND_ANONYMOUS';
	public const KIND_TEMPORARY = 'ACCOUNT_KIND_TEMPORARY';
	public const KIND_REGISTERED = 'ACCOUNT_KIND_REGISTERED';

	/**
	 * The most X-Forwarded-For entries sent: editgate refuses requests with more than
	 * `max_forwarded_for` (32 by default). The entries nearest to the wiki are kept.
	 */
	public const MAX_FORWARDED_FOR = 32;

	/**
	 * When an account's registration time is unknown. MediaWiki did not record registration
	 * before 2005; its own autopromote counts such an account from the Unix epoch (as old),
	 * and so does this extension, so a long-standing editor is not judged as brand new.
	 */
	public const UNKNOWN_REGISTRATION = '1970-01-01T00:00:00Z';

	/**
	 * @param string $ip The client address, after MediaWiki's trusted-proxy rules
	 * @param string|null $xff The raw X-Forwarded-For header, if any
	 * @param string $wiki The wiki id
	 * @param string $action The permission action (edit, create, createaccount, ...)
	 * @param string $kind One of the KIND_ constants
	 * @param string[] $groups Effective groups of the account
	 * @param string[] $rights Rights of the account
	 * @param int|null $editCount Edit count; null (as for anonymous users) sends 0
	 * @param string|null|false $registration Registration time as a MediaWiki timestamp
	 *   (YYYYMMDDHHMMSS, UTC); null or false when unknown
	 * @param bool $emailConfirmed Whether the account has a confirmed e-mail address
	 * @param string $requestId MediaWiki's request id, echoed back for log correlation
	 * @return array The request, ready for json_encode()
	 */
	public static function build(
		string $ip,
		?string $xff,
		string $wiki,
		string $action,
		string $kind,
		array $groups,
		array $rights,
		?int $editCount,
		$registration,
		bool $emailConfirmed,
		string $requestId
	): array {
		$account = [
			'kind' => $kind,
			'groups' => array_values( array_map( 'strval', $groups ) ),
			'rights' => array_values( array_map( 'strval', $rights ) ),
			// proto3 JSON writes uint64 as a string; editgate takes either, but never ''.
			'editCount' => (string)max( 0, (int)$editCount ),
			'emailConfirmed' => $emailConfirmed,
		];
		if ( $kind !== self::KIND_ANONYMOUS ) {
			$account['registeredAt'] = self::rfc3339( $registration ) ?? self::UNKNOWN_REGISTRATION;
		}
		return [
			'ip' => $ip,
			'forwardedFor' => self::forwardedFor( $xff ),
			'wiki' => $wiki,
			'action' => $action,
			'account' => $account,
			'requestId' => $requestId,
		];
	}

	/**
	 * The addresses of an X-Forwarded-For header, in order. Entries that are not IP
	 * addresses (`unknown`, obfuscated identifiers, garbage) are dropped rather than sent,
	 * since editgate refuses a request with a malformed address.
	 *
	 * @param string|null $header
	 * @return string[]
	 */
	public static function forwardedFor( ?string $header ): array {
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
		return array_slice( $out, -self::MAX_FORWARDED_FOR );
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
}
