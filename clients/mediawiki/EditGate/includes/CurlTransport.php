<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

/**
 * The HTTP POST under EditGateClient, with plain curl.
 *
 * Written here rather than taken from MediaWiki because none of its clients does what a
 * security gate needs: MultiHttpClient always follows redirects (a redirected POST arrives
 * empty, is refused with 400, and the edit used to fail open) and reads any answer into
 * memory (a 200 MB answer exhausted PHP's memory); HttpRequestFactory's Guzzle client took
 * twice as long per call (BENCHMARKS.md). This one never follows a redirect, ignores proxy
 * settings and environment proxies (editgate runs beside the wiki), stops reading past
 * {@see self::MAX_RESPONSE_BYTES}, and keeps its connection for the next call in the same
 * PHP request. With a socket path ($wgEditGateSocket) it connects to editgate's Unix-domain
 * socket instead of the URL's host and port: a new connection per PHP request costs less
 * that way (BENCHMARKS.md).
 */
class CurlTransport {

	/** The largest answer read: a CheckResponse is a few hundred bytes. */
	public const MAX_RESPONSE_BYTES = 65536;

	/** @var resource|\CurlHandle|null Reused within one PHP request (keep-alive). */
	private $handle;

	/** @var string|null editgate's Unix-domain socket, when not TCP */
	private $socket;

	/**
	 * @param string|null $socket Path of editgate's Unix-domain socket (`http_socket`); null
	 *   or '' connects to the URL's host and port
	 */
	public function __construct( ?string $socket = null ) {
		$this->socket = ( $socket === null || $socket === '' ) ? null : $socket;
	}

	/**
	 * @param string $url
	 * @param string $body JSON
	 * @param float $timeout Seconds, connect to last byte; the connection gets half
	 * @return array [ 'code' => int (0: no complete answer), 'body' => string, 'error' =>
	 *   string ('' when complete), 'tooLarge' => bool ]
	 */
	public function post( string $url, string $body, float $timeout ): array {
		if ( !function_exists( 'curl_init' ) ) {
			return [ 'code' => 0, 'body' => '', 'error' => 'PHP has no curl extension', 'tooLarge' => false ];
		}
		$this->handle = $this->handle ?: curl_init();
		$ch = $this->handle;
		if ( $this->socket !== null ) {
			curl_setopt( $ch, CURLOPT_UNIX_SOCKET_PATH, $this->socket );
		}
		$received = '';
		$tooLarge = false;
		curl_setopt_array( $ch, [
			CURLOPT_URL => $url,
			CURLOPT_POST => true,
			CURLOPT_POSTFIELDS => $body,
			CURLOPT_HTTPHEADER => [
				'Content-Type: application/json',
				'Accept: application/json',
				// No "100 Continue" round trip.
				'Expect:',
			],
			CURLOPT_USERAGENT => 'MediaWiki-EditGate/' . ( defined( 'MW_VERSION' ) ? MW_VERSION : '0' ),
			CURLOPT_FOLLOWLOCATION => false,
			CURLOPT_PROTOCOLS => CURLPROTO_HTTP | CURLPROTO_HTTPS,
			// Not through $wgHTTPProxy or an http_proxy variable.
			CURLOPT_PROXY => '',
			CURLOPT_NOPROXY => '*',
			// Sub-second timeouts need this, or curl's resolver uses a one-second alarm.
			CURLOPT_NOSIGNAL => true,
			CURLOPT_CONNECTTIMEOUT_MS => max( 1, (int)( $timeout * 500 ) ),
			CURLOPT_TIMEOUT_MS => max( 1, (int)( $timeout * 1000 ) ),
			CURLOPT_TCP_NODELAY => true,
			CURLOPT_HEADER => false,
			CURLOPT_RETURNTRANSFER => false,
			CURLOPT_WRITEFUNCTION => static function ( $ch, string $data ) use ( &$received, &$tooLarge ): int {
				if ( strlen( $received ) + strlen( $data ) > self::MAX_RESPONSE_BYTES ) {
					$tooLarge = true;
					// Fewer bytes than given: curl stops with a write error.
					return 0;
				}
				$received .= $data;
				return strlen( $data );
			},
		] );
		$ok = curl_exec( $ch );
		$code = (int)curl_getinfo( $ch, CURLINFO_RESPONSE_CODE );
		$error = $ok === false && !$tooLarge ? ( curl_error( $ch ) ?: 'curl error ' . curl_errno( $ch ) ) : '';
		return [
			'code' => $ok === false && !$tooLarge ? 0 : $code,
			'body' => $received,
			'error' => $error,
			'tooLarge' => $tooLarge,
		];
	}
}
