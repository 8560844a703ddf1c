<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

/**
 * Whether a web request can change the wiki: what makes a permission check an attempt
 * (decided and counted) rather than a probe (decided alike, counted apart).
 *
 * Pure PHP with no MediaWiki dependency (unit-tested in tests/phpunit/unit).
 */
class RequestIntent {

	/** RFC 9110's safe methods: a request by one of them is not meant to change anything. */
	private const SAFE_METHODS = [ 'GET', 'HEAD' ];

	/**
	 * The parameters MediaWiki reads a CSRF token from: `token` (the API, rollback and patrol
	 * links) and `wpEditToken` (forms). MediaWiki changes nothing without one.
	 */
	private const TOKEN_PARAMETERS = [ 'token', 'wpEditToken' ];

	/**
	 * Whether a request may save something: any method but GET and HEAD (the REST API saves
	 * on PUT, and MediaWiki accepts writes on other methods too), and a GET or HEAD that
	 * carries a CSRF token (rollback and patrol links save on a GET). The client chooses its
	 * method, so the method alone must never make a save a probe.
	 *
	 * @param string $method The HTTP method
	 * @param callable(string):bool $hasParameter Whether the request has a parameter
	 * @return bool
	 */
	public static function canWrite( string $method, callable $hasParameter ): bool {
		if ( !in_array( strtoupper( $method ), self::SAFE_METHODS, true ) ) {
			return true;
		}
		foreach ( self::TOKEN_PARAMETERS as $name ) {
			if ( $hasParameter( $name ) ) {
				return true;
			}
		}
		return false;
	}
}
