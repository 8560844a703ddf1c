<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

/**
 * How EditGateClient reaches editgate: one HTTP POST, bounded in time and size, never
 * following a redirect. {@see StreamTransport} in production; tests script their own.
 */
interface Transport {

	/** The largest answer body read: a CheckResponse is a few hundred bytes. */
	public const MAX_RESPONSE_BYTES = 65536;

	/**
	 * @param string $url editgate's `/v1/check` URL
	 * @param string $body JSON
	 * @param float $timeout Seconds, connection to last byte; the connection gets half
	 * @return TransportResponse
	 */
	public function post( string $url, string $body, float $timeout ): TransportResponse;
}
