<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

use MediaWiki\Http\HttpRequestFactory;
use MultiHttpClient;
use Psr\Log\LoggerInterface;
use UnexpectedValueException;

/**
 * One call to editgate's `POST /v1/check`, with the outcome sorted into what the wiki
 * should do about it.
 *
 * - 200 with a CheckResponse: a Decision.
 * - No answer in time, a refused connection, a 5xx, or a body that is not a CheckResponse:
 *   null (editgate is unavailable), logged as a warning, or as an error for a bad body.
 * - A 4xx: null too, logged at error level. editgate refuses a request as malformed only
 *   when this extension sent a bad one, so it is a bug to fix, not an outage.
 *
 * Never logs the address being checked.
 */
class EditGateClient {

	/** @var MultiHttpClient */
	private $http;
	/** @var string */
	private $url;
	/** @var LoggerInterface */
	private $logger;

	/**
	 * @param HttpRequestFactory $httpRequestFactory
	 * @param string $baseUrl editgate's HTTP port, like http://127.0.0.1:9090
	 * @param float $timeout Seconds for the whole call; the connection gets half of it
	 * @param LoggerInterface $logger The EditGate channel
	 */
	public function __construct(
		HttpRequestFactory $httpRequestFactory,
		string $baseUrl,
		float $timeout,
		LoggerInterface $logger
	) {
		// MultiHttpClient (plain curl) rather than HttpRequestFactory::create() (Guzzle):
		// measured over 200 edits in a real wiki with opcache, a call through Guzzle took
		// 0.99 ms at the median, one through MultiHttpClient 0.53 ms (BENCHMARKS.md). It
		// also uses no proxy unless told to: editgate runs beside the wiki, and its calls
		// must not go through $wgHTTPProxy.
		$this->http = $httpRequestFactory->createMultiClient( [
			'reqTimeout' => $timeout,
			'connTimeout' => $timeout / 2,
			'userAgent' => 'MediaWiki-EditGate/' . MW_VERSION,
		] );
		$this->url = rtrim( $baseUrl, '/' ) . '/v1/check';
		$this->logger = $logger;
	}

	/**
	 * Asks editgate about one attempt.
	 *
	 * @param array $payload From CheckPayload::build()
	 * @return Decision|null null when editgate could not decide (see the class comment)
	 */
	public function check( array $payload ): ?Decision {
		$context = [
			'action' => $payload['action'],
			'wiki' => $payload['wiki'],
			'account' => strtolower( substr( $payload['account']['kind'], strlen( 'ACCOUNT_KIND_' ) ) ),
		];
		$started = hrtime( true );
		$response = $this->http->run( [
			'method' => 'POST',
			'url' => $this->url,
			'headers' => [ 'Content-Type' => 'application/json' ],
			'body' => json_encode( $payload ),
		] );
		$context['elapsed_ms'] = round( ( hrtime( true ) - $started ) / 1e6, 3 );
		$code = (int)$response['code'];
		$body = is_string( $response['body'] ) ? $response['body'] : '';

		if ( $code === 0 ) {
			$this->logger->warning(
				'editgate unavailable after {elapsed_ms} ms: {error}',
				$context + [ 'error' => $response['error'] ?: 'no answer' ]
			);
			return null;
		}
		if ( $code >= 400 && $code < 500 ) {
			$this->logger->error(
				'editgate refused the request as malformed (HTTP {status}: {error}); ' .
					'this is a bug in the EditGate extension or a version mismatch with editgate',
				$context + [ 'status' => $code, 'error' => substr( $body, 0, 500 ) ]
			);
			return null;
		}
		if ( $code !== 200 ) {
			$this->logger->warning(
				'editgate unavailable: HTTP {status} after {elapsed_ms} ms: {error}',
				$context + [ 'status' => $code, 'error' => substr( $body, 0, 500 ) ]
			);
			return null;
		}
		try {
			$decision = Decision::fromJson( $body );
		} catch ( UnexpectedValueException $e ) {
			$this->logger->error( 'editgate unavailable: {error}', $context + [ 'error' => $e->getMessage() ] );
			return null;
		}
		$this->logger->debug(
			'editgate answered {verdict} ({rule}) for {action} by {account} in {elapsed_ms} ms',
			$context + [
				'verdict' => $decision->verdict,
				'rule' => $decision->ruleId === '' ? 'default' : $decision->ruleId,
				'policy_version' => $decision->policyVersion,
			]
		);
		return $decision;
	}
}
