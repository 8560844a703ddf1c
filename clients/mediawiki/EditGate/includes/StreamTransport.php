<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

/**
 * One HTTP/1.1 POST to editgate over a PHP stream: TCP, TLS for an https URL, or editgate's
 * Unix-domain socket ($wgEditGateSocket).
 *
 * Written here rather than taken from MediaWiki because none of its clients does what a
 * security gate on every edit needs: MultiHttpClient always follows redirects (a redirected
 * POST arrives empty) and reads any answer into memory; HttpRequestFactory's Guzzle client
 * and plain curl cost more per call (curl's non-blocking connect and polls wait on more
 * wake-ups than a blocking stream's connect, write and read). This
 * one never follows a redirect, ignores proxy settings (editgate runs beside the wiki),
 * stops reading past Transport::MAX_RESPONSE_BYTES, and holds every step to one deadline.
 * It sends `Connection: close`: a wiki asks once or twice per request.
 */
class StreamTransport implements Transport {

	/** The most header bytes read before the body. */
	private const MAX_HEADER_BYTES = 16384;

	/** @var string|null editgate's Unix-domain socket, when not the URL's host and port */
	private $socket;
	/** @var array<string,string> TLS settings beyond verifying the peer: cafile, local_cert, local_pk */
	private $tls = [];

	/**
	 * @param string|null $socket Path of editgate's Unix-domain socket (`http_socket`, plain
	 *   HTTP); null or '' connects to the URL's host and port
	 * @param string|null $caFile For an https URL: PEM certificates of the CAs trusted for
	 *   editgate's certificate, instead of the system's
	 * @param string|null $clientCert For an https URL to an editgate that asks for client
	 *   certificates (`tls_client_ca`): this wiki's, PEM
	 * @param string|null $clientKey Its private key, PEM
	 */
	public function __construct(
		?string $socket = null,
		?string $caFile = null,
		?string $clientCert = null,
		?string $clientKey = null
	) {
		$this->socket = ( $socket === null || $socket === '' ) ? null : $socket;
		foreach ( [ 'cafile' => $caFile, 'local_cert' => $clientCert, 'local_pk' => $clientKey ] as $key => $value ) {
			if ( $value !== null && $value !== '' ) {
				$this->tls[$key] = $value;
			}
		}
	}

	/** @inheritDoc */
	public function post( string $url, string $body, float $timeout ): TransportResponse {
		$deadline = hrtime( true ) + (int)( $timeout * 1e9 );
		$parts = parse_url( $url );
		$scheme = strtolower( (string)( $parts['scheme'] ?? '' ) );
		if ( !isset( $parts['host'] ) || ( $scheme !== 'http' && $scheme !== 'https' ) ) {
			return TransportResponse::failed( "not an http(s) URL: $url" );
		}
		$host = $parts['host'];
		$port = (int)( $parts['port'] ?? ( $scheme === 'https' ? 443 : 80 ) );
		if ( $this->socket !== null ) {
			$target = 'unix://' . $this->socket;
		} else {
			$target = ( $scheme === 'https' ? 'tls://' : 'tcp://' ) . "$host:$port";
		}
		$context = stream_context_create( [ 'ssl' => [
			'peer_name' => trim( $host, '[]' ),
			'verify_peer' => true,
			'verify_peer_name' => true,
			'SNI_enabled' => true,
		] + $this->tls ] );
		$errno = 0;
		$errstr = '';
		$conn = @stream_socket_client( $target, $errno, $errstr, $timeout / 2, STREAM_CLIENT_CONNECT, $context );
		if ( $conn === false ) {
			return TransportResponse::failed( "cannot connect to $target: " . ( $errstr ?: "error $errno" ) );
		}
		try {
			$path = ( $parts['path'] ?? '' ) === '' ? '/' : $parts['path'];
			$query = isset( $parts['query'] ) ? '?' . $parts['query'] : '';
			$authority = $host . ( isset( $parts['port'] ) ? ':' . $parts['port'] : '' );
			$request = "POST $path$query HTTP/1.1\r\n" .
				"Host: $authority\r\n" .
				"Content-Type: application/json\r\n" .
				"Accept: application/json\r\n" .
				'User-Agent: MediaWiki-EditGate/' . ( defined( 'MW_VERSION' ) ? MW_VERSION : '0' ) . "\r\n" .
				'Content-Length: ' . strlen( $body ) . "\r\n" .
				"Connection: close\r\n\r\n" . $body;
			$error = self::write( $conn, $request, $deadline );
			return $error ?? self::read( $conn, $deadline );
		} finally {
			fclose( $conn );
		}
	}

	/**
	 * Writes all of `$data` before the deadline.
	 *
	 * @param resource $conn
	 * @param string $data
	 * @param int $deadline hrtime() nanoseconds
	 * @return TransportResponse|null Why it could not; null when written
	 */
	private static function write( $conn, string $data, int $deadline ): ?TransportResponse {
		while ( $data !== '' ) {
			if ( !self::waitUntil( $conn, $deadline ) ) {
				return TransportResponse::failed( 'timed out sending the request' );
			}
			$written = @fwrite( $conn, $data );
			if ( $written === false || ( $written === 0 && stream_get_meta_data( $conn )['timed_out'] ) ) {
				return TransportResponse::failed( 'the connection closed while sending the request' );
			}
			$data = (string)substr( $data, $written );
		}
		return null;
	}

	/**
	 * Reads the answer to its end (the server closes, or its Content-Length arrived), within
	 * the deadline and the size limit.
	 *
	 * @param resource $conn
	 * @param int $deadline hrtime() nanoseconds
	 * @return TransportResponse
	 */
	private static function read( $conn, int $deadline ): TransportResponse {
		$received = '';
		$headerEnd = false;
		$code = 0;
		$length = null;
		$chunked = false;
		while ( true ) {
			if ( $headerEnd === false ) {
				if ( strncmp( $received, 'HTTP/', min( 5, strlen( $received ) ) ) !== 0 ) {
					return TransportResponse::garbled( 'not an HTTP answer: ' . substr( $received, 0, 40 ) );
				}
				$headerEnd = strpos( $received, "\r\n\r\n" );
				if ( $headerEnd !== false && $headerEnd > self::MAX_HEADER_BYTES ) {
					return TransportResponse::tooLarge( 0 );
				}
				if ( $headerEnd !== false ) {
					$head = substr( $received, 0, $headerEnd );
					if ( !preg_match( '#^HTTP/1\.[01] (\d{3})[^\r\n]*#', $head, $status ) ) {
						return TransportResponse::garbled( 'not an HTTP answer: ' . substr( $head, 0, 40 ) );
					}
					$code = (int)$status[1];
					if ( preg_match( '/\r\ncontent-length:[ \t]*(\d+)[ \t]*(?=\r\n|$)/i', $head, $m ) ) {
						$length = (int)$m[1];
						if ( $length > Transport::MAX_RESPONSE_BYTES ) {
							return TransportResponse::tooLarge( $code );
						}
					}
					$chunked = (bool)preg_match( '/\r\ntransfer-encoding:[^\r\n]*chunked/i', $head );
				} elseif ( strlen( $received ) > self::MAX_HEADER_BYTES ) {
					return TransportResponse::tooLarge( 0 );
				}
			}
			if ( $headerEnd !== false ) {
				$bodyBytes = strlen( $received ) - $headerEnd - 4;
				if ( $bodyBytes > Transport::MAX_RESPONSE_BYTES + ( $chunked ? 1024 : 0 ) ) {
					return TransportResponse::tooLarge( $code );
				}
				if ( $length !== null && $bodyBytes >= $length ) {
					break;
				}
			}
			if ( feof( $conn ) ) {
				break;
			}
			if ( !self::waitUntil( $conn, $deadline ) ) {
				return TransportResponse::failed( 'timed out waiting for the answer', $received );
			}
			$chunk = @fread( $conn, 8192 );
			if ( $chunk === false || ( $chunk === '' && stream_get_meta_data( $conn )['timed_out'] ) ) {
				return TransportResponse::failed( 'timed out waiting for the answer', $received );
			}
			$received .= $chunk;
		}
		if ( $headerEnd === false ) {
			return TransportResponse::failed( 'the connection closed before a complete answer', $received );
		}
		$body = (string)substr( $received, $headerEnd + 4 );
		if ( $length !== null ) {
			if ( strlen( $body ) < $length ) {
				return TransportResponse::failed( 'the connection closed before a complete answer', $body );
			}
			return TransportResponse::answer( $code, substr( $body, 0, $length ) );
		}
		if ( $chunked ) {
			$decoded = self::dechunk( $body );
			if ( $decoded === false ) {
				return TransportResponse::garbled( 'a malformed chunked body' );
			}
			if ( $decoded === null ) {
				return TransportResponse::failed( 'the connection closed before a complete answer', $body );
			}
			return strlen( $decoded ) > Transport::MAX_RESPONSE_BYTES
				? TransportResponse::tooLarge( $code )
				: TransportResponse::answer( $code, $decoded );
		}
		return TransportResponse::answer( $code, $body );
	}

	/**
	 * Sets the stream's timeout to what is left before the deadline.
	 *
	 * @param resource $conn
	 * @param int $deadline
	 * @return bool False when the deadline has passed
	 */
	private static function waitUntil( $conn, int $deadline ): bool {
		$left = $deadline - hrtime( true );
		if ( $left <= 0 ) {
			return false;
		}
		stream_set_timeout( $conn, intdiv( $left, 1000000000 ), intdiv( $left % 1000000000, 1000 ) );
		return true;
	}

	/**
	 * A chunked body, decoded (RFC 9112 7.1; extensions and trailers ignored).
	 *
	 * @param string $body
	 * @return string|false|null False when malformed, null when it ends before its last chunk
	 */
	private static function dechunk( string $body ) {
		$out = '';
		$at = 0;
		while ( true ) {
			$eol = strpos( $body, "\r\n", $at );
			if ( $eol === false ) {
				return null;
			}
			$digits = trim( explode( ';', substr( $body, $at, $eol - $at ), 2 )[0] );
			if ( $digits === '' || strlen( $digits ) > 8 || !ctype_xdigit( $digits ) ) {
				return false;
			}
			$size = (int)hexdec( $digits );
			if ( $size === 0 ) {
				return $out;
			}
			if ( strlen( $body ) < $eol + 2 + $size ) {
				return null;
			}
			$out .= substr( $body, $eol + 2, $size );
			$at = $eol + 2 + $size + 2;
		}
	}
}
