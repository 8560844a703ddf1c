<?php

use MediaWiki\Extension\EditGate\CheckPayload;
use MediaWiki\Extension\EditGate\CurlTransport;
use MediaWiki\Extension\EditGate\EditGateClient;
use MediaWiki\Extension\EditGate\Outcome;
use PHPUnit\Framework\TestCase;

/**
 * Only an outage (no connection, no complete answer in time, a 5xx) may fail open; every other
 * answer that cannot be used is a fault, and the wiki refuses. First with a scripted transport,
 * then with real curl against a scripted server on loopback (`php -S`).
 *
 * @covers \MediaWiki\Extension\EditGate\EditGateClient
 * @covers \MediaWiki\Extension\EditGate\CurlTransport
 * @covers \MediaWiki\Extension\EditGate\Outcome
 */
class EditGateClientTest extends TestCase {

	private const OK = '{"verdict":"VERDICT_ALLOW","ruleId":"","message":"","reason":"r","appeal":"","policyVersion":"v","requestId":"x"}';

	/** @var resource|null The scripted server */
	private static $server;
	/** @var int */
	private static $port = 0;

	private static function payload(): array {
		return CheckPayload::build( [
			'ip' => '192.0.2.1',
			'wiki' => 'enwiki',
			'action' => 'edit',
			'kind' => CheckPayload::NAME_ANONYMOUS,
			'requestId' => "r\xff-from-a-client",
		] );
	}

	/**
	 * A client whose transport answers `$response`, and the logger it writes to.
	 */
	private static function scripted( array $response, ?string &$sent = null ): array {
		$logger = new TestLogger();
		$client = new EditGateClient( 'http://editgate.test', 0.25, $logger,
			static function ( string $url, string $body, float $timeout ) use ( $response, &$sent ) {
				$sent = $body;
				return $response + [ 'code' => 0, 'body' => '', 'error' => '', 'tooLarge' => false ];
			}
		);
		return [ $client, $logger ];
	}

	public static function provideAnswers() {
		yield 'an answer' => [ [ 'code' => 200, 'body' => self::OK ], Outcome::DECIDED ];
		yield 'refused connection' => [ [ 'code' => 0, 'error' => 'Connection refused' ], Outcome::OUTAGE ];
		yield 'timeout with half a body' => [ [ 'code' => 0, 'body' => '{"verd', 'error' => 'Operation timed out' ], Outcome::OUTAGE ];
		yield 'starting' => [ [ 'code' => 503, 'body' => '{}' ], Outcome::OUTAGE ];
		yield 'internal error' => [ [ 'code' => 500 ], Outcome::OUTAGE ];
		yield 'wrong path' => [ [ 'code' => 404, 'body' => 'not found' ], Outcome::FAULT ];
		yield 'malformed request' => [ [ 'code' => 400, 'body' => '{"code":"InvalidArgument"}' ], Outcome::FAULT ];
		yield 'redirect' => [ [ 'code' => 307 ], Outcome::FAULT ];
		yield 'the wiki itself' => [ [ 'code' => 200, 'body' => '<!DOCTYPE html><html>' ], Outcome::FAULT ];
		yield 'unknown verdict' => [ [ 'code' => 200, 'body' => '{"verdict":"VERDICT_MAYBE"}' ], Outcome::FAULT ];
		yield 'verdict of a wrong type' => [ [ 'code' => 200, 'body' => '{"verdict":[]}' ], Outcome::FAULT ];
		yield 'numeric verdict' => [ [ 'code' => 200, 'body' => '{"verdict":1}' ], Outcome::FAULT ];
		yield 'JSON but no object' => [ [ 'code' => 200, 'body' => '"VERDICT_ALLOW"' ], Outcome::FAULT ];
		yield 'other success' => [ [ 'code' => 204 ], Outcome::FAULT ];
		yield 'too large' => [ [ 'code' => 200, 'body' => '', 'tooLarge' => true ], Outcome::FAULT ];
	}

	/**
	 * @dataProvider provideAnswers
	 */
	public function testEachAnswerIsSorted( array $response, string $kind ) {
		[ $client, $logger ] = self::scripted( $response );
		$outcome = $client->check( self::payload() );
		$this->assertSame( $kind, $outcome->kind );
		$this->assertSame( $kind === Outcome::DECIDED, $outcome->decision !== null );
		if ( $outcome->decision !== null ) {
			// The time of the answer: part of the reference an editor quotes in an appeal.
			$this->assertMatchesRegularExpression( '/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/', $outcome->decision->time );
		}
		if ( $kind === Outcome::FAULT ) {
			$this->assertCount( 1, $logger->at( 'error' ), implode( "\n", $logger->lines ) );
		} else {
			$this->assertCount( 0, $logger->at( 'error' ), implode( "\n", $logger->lines ) );
		}
		$this->assertStringNotContainsString( '192.0.2.1', implode( "\n", $logger->lines ), 'no address in a log' );
	}

	public function testEveryAnswerOfOneRequestHasTheRequestsTime() {
		// `edit` and `create` of a new page are two answers: one reference, so one time (the
		// request's), or the editor would read the refusal twice.
		$saved = $_SERVER['REQUEST_TIME'] ?? null;
		$_SERVER['REQUEST_TIME'] = 1796551200;
		try {
			[ $client ] = self::scripted( [ 'code' => 200, 'body' => self::OK ] );
			$first = $client->check( self::payload() )->decision;
			$second = $client->check( self::payload() )->decision;
		} finally {
			$_SERVER['REQUEST_TIME'] = $saved;
		}
		$this->assertSame( '2026-12-06T10:00:00Z', $first->time );
		$this->assertSame( $first->time, $second->time );
	}

	public function testInvalidUtf8FromTheClientStillMakesABody() {
		[ $client ] = self::scripted( [ 'code' => 200, 'body' => self::OK ], $sent );
		$client->check( self::payload() );
		$this->assertNotSame( '', $sent );
		$this->assertSame( "r\u{FFFD}-from-a-client", json_decode( $sent, true )['requestId'] );
	}

	public static function provideTimeouts() {
		yield 'zero means no timeout to curl' => [ 0, EditGateClient::DEFAULT_TIMEOUT ];
		yield 'negative' => [ -1, EditGateClient::DEFAULT_TIMEOUT ];
		yield 'not a number' => [ 'soon', EditGateClient::DEFAULT_TIMEOUT ];
		yield 'infinite' => [ INF, EditGateClient::DEFAULT_TIMEOUT ];
		yield 'too short' => [ 0.001, EditGateClient::MIN_TIMEOUT ];
		yield 'too long' => [ 3600, EditGateClient::MAX_TIMEOUT ];
		yield 'as set' => [ '0.5', 0.5 ];
	}

	/**
	 * @dataProvider provideTimeouts
	 */
	public function testTheTimeoutIsClamped( $setting, float $used ) {
		$this->assertSame( $used, EditGateClient::clampTimeout( $setting ) );
	}

	// --- real curl against a scripted server --------------------------------------------

	public static function setUpBeforeClass(): void {
		$probe = stream_socket_server( 'tcp://127.0.0.1:0' );
		self::$port = (int)substr( strrchr( stream_socket_get_name( $probe, false ), ':' ), 1 );
		fclose( $probe );
		$router = __DIR__ . '/../fixtures/answers.php';
		self::$server = proc_open(
			[ PHP_BINARY, '-S', '127.0.0.1:' . self::$port, $router ],
			[ [ 'file', '/dev/null', 'r' ], [ 'file', '/dev/null', 'w' ], [ 'file', '/dev/null', 'w' ] ],
			$pipes
		);
		for ( $i = 0; $i < 100; $i++ ) {
			$s = @fsockopen( '127.0.0.1', self::$port, $errno, $errstr, 0.1 );
			if ( $s ) {
				fclose( $s );
				return;
			}
			usleep( 50000 );
		}
		self::fail( 'php -S did not start' );
	}

	public static function tearDownAfterClass(): void {
		if ( self::$server ) {
			proc_terminate( self::$server );
			proc_close( self::$server );
		}
	}

	private static function real( string $prefix, float $timeout = 0.5 ): array {
		$logger = new TestLogger();
		$url = 'http://127.0.0.1:' . self::$port . $prefix;
		return [ new EditGateClient( $url, $timeout, $logger ), $logger ];
	}

	public static function provideServers() {
		yield 'an answer, sent as JSON' => [ '/ok', Outcome::DECIDED ];
		// Followed, the POST would arrive empty; not followed, it is a fault.
		yield 'a redirect' => [ '/redirect', Outcome::FAULT ];
		yield 'the wiki\'s own page' => [ '/html', Outcome::FAULT ];
		yield 'a wrong path' => [ '/nowhere', Outcome::FAULT ];
		yield 'a megabyte' => [ '/huge', Outcome::FAULT ];
		yield 'half an answer, then the timeout' => [ '/slow', Outcome::OUTAGE ];
		yield 'starting' => [ '/fail', Outcome::OUTAGE ];
	}

	/**
	 * @dataProvider provideServers
	 */
	public function testRealCurl( string $prefix, string $kind ) {
		[ $client, $logger ] = self::real( $prefix );
		$started = microtime( true );
		$outcome = $client->check( self::payload() );
		$this->assertSame( $kind, $outcome->kind, implode( "\n", $logger->lines ) );
		if ( $prefix === '/ok' ) {
			$this->assertSame( 'tor-anon', $outcome->decision->ruleId, 'the body arrived' );
		}
		if ( $prefix === '/huge' ) {
			$this->assertStringContainsString( (string)CurlTransport::MAX_RESPONSE_BYTES, implode( "\n", $logger->lines ) );
		}
		// Not a timing assertion on editgate: the call is bounded by its own timeout, whatever
		// the server does (with a wide margin for a loaded machine).
		$this->assertLessThan( 5.0, microtime( true ) - $started );
	}

	public function testNothingListensIsAnOutage() {
		$probe = stream_socket_server( 'tcp://127.0.0.1:0' );
		$port = (int)substr( strrchr( stream_socket_get_name( $probe, false ), ':' ), 1 );
		fclose( $probe );
		$client = new EditGateClient( "http://127.0.0.1:$port", 0.5, new TestLogger() );
		$this->assertSame( Outcome::OUTAGE, $client->check( self::payload() )->kind );
	}
}
