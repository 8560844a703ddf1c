<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

use JsonException;
use Psr\Log\LoggerInterface;
use UnexpectedValueException;

/**
 * One call to editgate's `POST /v1/check`, with the outcome sorted into what the wiki should
 * do about it (an {@see Outcome}):
 *
 * - 200 with a CheckResponse: decided.
 * - No connection, no complete answer in time, or a 5xx: an outage. Only an outage follows
 *   $wgEditGateFailOpen.
 * - Anything else (a 4xx, a redirect, a 200 that is no CheckResponse, an unknown verdict, a
 *   wrong JSON type, an answer over the size cap, a request that cannot be encoded): a fault,
 *   logged at error level; the wiki refuses. editgate refuses a request only when this
 *   extension or its configuration is wrong, and a fault must not be something a client can
 *   trigger to get an edit through fail-open (an `X-Request-Id` of invalid UTF-8 once made the
 *   body empty, editgate answered 400, and the edit was saved).
 *
 * Never logs the address being checked.
 */
class EditGateClient {

	/** Seconds, when $wgEditGateTimeout is not a positive number. */
	public const DEFAULT_TIMEOUT = 0.25;
	/** Bounds of $wgEditGateTimeout: a call always has a deadline, never an unbounded one. */
	public const MIN_TIMEOUT = 0.02;
	public const MAX_TIMEOUT = 10.0;

	/** @var Transport */
	private $transport;
	/** @var string */
	private $url;
	/** @var float */
	private $timeout;
	/** @var LoggerInterface */
	private $logger;

	/**
	 * @param string $baseUrl editgate's HTTP port, like http://127.0.0.1:9090
	 * @param mixed $timeout Seconds for the whole call (clamped to 0.02–10; not a positive
	 *   number: 0.25); the connection gets half of it
	 * @param LoggerInterface $logger The EditGate channel
	 * @param Transport|null $transport Default: a StreamTransport to the URL's host and port
	 */
	public function __construct(
		string $baseUrl,
		$timeout,
		LoggerInterface $logger,
		?Transport $transport = null
	) {
		$this->url = rtrim( $baseUrl, '/' ) . '/v1/check';
		$this->timeout = self::clampTimeout( $timeout );
		$this->logger = $logger;
		$this->transport = $transport ?? new StreamTransport();
	}

	/**
	 * $wgEditGateTimeout as used: within bounds, the default when not a positive number.
	 *
	 * @param mixed $timeout
	 * @return float
	 */
	public static function clampTimeout( $timeout ): float {
		if ( !is_numeric( $timeout ) || !is_finite( (float)$timeout ) || (float)$timeout <= 0 ) {
			return self::DEFAULT_TIMEOUT;
		}
		return max( self::MIN_TIMEOUT, min( self::MAX_TIMEOUT, (float)$timeout ) );
	}

	/**
	 * Asks editgate about one attempt.
	 *
	 * @param array $payload From CheckPayload::build()
	 * @return Outcome
	 */
	public function check( array $payload ): Outcome {
		$context = [
			'action' => $payload['action'] ?? '',
			'wiki' => $payload['wiki'] ?? '',
			'account' => strtolower( substr( (string)( $payload['account']['kind'] ?? '' ), strlen( 'ACCOUNT_KIND_' ) ) ),
			'probe' => !empty( $payload['probe'] ),
		];
		try {
			// Invalid UTF-8 anywhere (a request id, a group name) is replaced, never a reason
			// for an empty body.
			$body = json_encode(
				$payload,
				JSON_INVALID_UTF8_SUBSTITUTE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR
			);
		} catch ( JsonException $e ) {
			return $this->fault( 'the request could not be encoded: {error}', $context + [ 'error' => $e->getMessage() ] );
		}
		$started = hrtime( true );
		$response = $this->transport->post( $this->url, $body, $this->timeout );
		$context['elapsed_ms'] = round( ( hrtime( true ) - $started ) / 1e6, 3 );
		$code = $response->code;
		$text = $response->body;
		$error = $response->error;

		if ( $response->tooLarge ) {
			return $this->fault(
				'editgate answered more than {cap} bytes (HTTP {status}): not an answer of editgate\'s',
				$context + [ 'cap' => Transport::MAX_RESPONSE_BYTES, 'status' => $code ]
			);
		}
		if ( $response->garbled !== '' ) {
			return $this->fault(
				'what answered at $wgEditGateUrl is not editgate ({error}): refusing',
				$context + [ 'error' => $response->garbled ]
			);
		}
		if ( $code === 0 || $error !== '' ) {
			// No connection, or no complete answer in time (a body cut by the timeout is a
			// timeout, whatever arrived of it).
			$this->logger->warning(
				'editgate unavailable after {elapsed_ms} ms: {error}',
				$context + [ 'error' => $error ?: 'no answer' ]
			);
			return Outcome::outage( $error ?: 'no answer' );
		}
		if ( $code >= 500 ) {
			$this->logger->warning(
				'editgate unavailable: HTTP {status} after {elapsed_ms} ms: {error}',
				$context + [ 'status' => $code, 'error' => substr( $text, 0, 500 ) ]
			);
			return Outcome::outage( "HTTP $code" );
		}
		if ( $code !== 200 ) {
			return $this->fault(
				'editgate refused the request (HTTP {status}: {error}); a wrong $wgEditGateUrl, ' .
					'a redirect, a misconfiguration or a bug in the EditGate extension: refusing',
				$context + [ 'status' => $code, 'error' => substr( $text, 0, 500 ) ]
			);
		}
		try {
			$decision = Decision::fromJson( $text );
		} catch ( UnexpectedValueException $e ) {
			return $this->fault(
				'editgate answered HTTP 200 with something that is not a CheckResponse ({error}); ' .
					'is $wgEditGateUrl editgate\'s HTTP port? Refusing',
				$context + [ 'error' => $e->getMessage() ]
			);
		}
		// The time the wiki's request began, not this answer's: every refusal of one request
		// (`edit` and `create` of a new page) carries the same reference, shown once.
		$decision->time = gmdate( 'Y-m-d\TH:i:s\Z', (int)( $_SERVER['REQUEST_TIME'] ?? time() ) );
		$this->logger->debug(
			'editgate answered {verdict} ({rule}) for {action} by {account} in {elapsed_ms} ms',
			$context + [
				'verdict' => $decision->verdict,
				'rule' => $decision->ruleId === '' ? 'default' : $decision->ruleId,
				'policy_version' => $decision->policyVersion,
			]
		);
		return Outcome::decided( $decision );
	}

	/**
	 * @param string $message
	 * @param array $context
	 * @return Outcome
	 */
	private function fault( string $message, array $context ): Outcome {
		$this->logger->error( $message, $context );
		return Outcome::fault( $message );
	}
}
