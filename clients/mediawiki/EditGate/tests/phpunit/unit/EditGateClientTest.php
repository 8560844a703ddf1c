<?php

use MediaWiki\Extension\EditGate\CheckPayload;
use MediaWiki\Extension\EditGate\EditGateClient;
use MediaWiki\Extension\EditGate\Outcome;
use MediaWiki\Extension\EditGate\StreamTransport;
use MediaWiki\Extension\EditGate\Transport;
use MediaWiki\Extension\EditGate\TransportResponse;
use PHPUnit\Framework\TestCase;

/**
 * Only an outage (no connection, no complete answer in time, a 5xx) may fail open; every other
 * answer that cannot be used is a fault, and the wiki refuses. First with a scripted transport,
 * then with the real transport against a scripted server on loopback (`php -S`).
 *
 * @covers \MediaWiki\Extension\EditGate\EditGateClient
 * @covers \MediaWiki\Extension\EditGate\StreamTransport
 * @covers \MediaWiki\Extension\EditGate\TransportResponse
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
	private static function scripted( TransportResponse $response, ?string &$sent = null ): array {
		$logger = new TestLogger();
		$transport = new class( $response, $sent ) implements Transport {
			/** @var TransportResponse */
			private $response;
			/** @var string|null */
			private $sent;

			public function __construct( TransportResponse $response, ?string &$sent ) {
				$this->response = $response;
				$this->sent = &$sent;
			}

			public function post( string $url, string $body, float $timeout ): TransportResponse {
				$this->sent = $body;
				return $this->response;
			}
		};
		return [ new EditGateClient( 'http://editgate.test', 0.25, $logger, $transport ), $logger ];
	}

	public static function provideAnswers() {
		$answer = [ TransportResponse::class, 'answer' ];
		$failed = [ TransportResponse::class, 'failed' ];
		yield 'an answer' => [ $answer( 200, self::OK ), Outcome::DECIDED ];
		yield 'refused connection' => [ $failed( 'Connection refused' ), Outcome::OUTAGE ];
		yield 'timeout with half a body' => [ $failed( 'timed out', '{"verd' ), Outcome::OUTAGE ];
		yield 'starting' => [ $answer( 503, '{}' ), Outcome::OUTAGE ];
		yield 'internal error' => [ $answer( 500, '' ), Outcome::OUTAGE ];
		yield 'wrong path' => [ $answer( 404, 'not found' ), Outcome::FAULT ];
		yield 'malformed request' => [ $answer( 400, '{"code":"InvalidArgument"}' ), Outcome::FAULT ];
		yield 'redirect' => [ $answer( 307, '' ), Outcome::FAULT ];
		yield 'the wiki itself' => [ $answer( 200, '<!DOCTYPE html><html>' ), Outcome::FAULT ];
		yield 'unknown verdict' => [ $answer( 200, '{"verdict":"VERDICT_MAYBE"}' ), Outcome::FAULT ];
		yield 'verdict of a wrong type' => [ $answer( 200, '{"verdict":[]}' ), Outcome::FAULT ];
		yield 'numeric verdict' => [ $answer( 200, '{"verdict":1}' ), Outcome::FAULT ];
		yield 'JSON but no object' => [ $answer( 200, '"VERDICT_ALLOW"' ), Outcome::FAULT ];
		yield 'other success' => [ $answer( 204, '' ), Outcome::FAULT ];
		yield 'too large' => [ TransportResponse::tooLarge( 200 ), Outcome::FAULT ];
		yield 'not HTTP' => [ TransportResponse::garbled( 'SSH-2.0-OpenSSH' ), Outcome::FAULT ];
	}

	/**
	 * @dataProvider provideAnswers
	 */
	public function testEachAnswerIsSorted( TransportResponse $response, string $kind ) {
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
			[ $client ] = self::scripted( TransportResponse::answer( 200, self::OK ) );
			$first = $client->check( self::payload() )->decision;
			$second = $client->check( self::payload() )->decision;
		} finally {
			$_SERVER['REQUEST_TIME'] = $saved;
		}
		$this->assertSame( '2026-12-06T10:00:00Z', $first->time );
		$this->assertSame( $first->time, $second->time );
	}

	public function testInvalidUtf8FromTheClientStillMakesABody() {
		[ $client ] = self::scripted( TransportResponse::answer( 200, self::OK ), $sent );
		$client->check( self::payload() );
		$this->assertNotSame( '', $sent );
		$this->assertSame( "r\u{FFFD}-from-a-client", json_decode( $sent, true )['requestId'] );
	}

	public static function provideTimeouts() {
		yield 'zero would mean no deadline' => [ 0, EditGateClient::DEFAULT_TIMEOUT ];
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

	// --- the real transport against a scripted server --------------------------------------------

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
	public function testRealTransport( string $prefix, string $kind ) {
		[ $client, $logger ] = self::real( $prefix );
		$started = microtime( true );
		$outcome = $client->check( self::payload() );
		$this->assertSame( $kind, $outcome->kind, implode( "\n", $logger->lines ) );
		if ( $prefix === '/ok' ) {
			$this->assertSame( 'tor-anon', $outcome->decision->ruleId, 'the body arrived' );
		}
		if ( $prefix === '/huge' ) {
			$this->assertStringContainsString( (string)Transport::MAX_RESPONSE_BYTES, implode( "\n", $logger->lines ) );
		}
		// Not a timing assertion on editgate: the call is bounded by its own timeout, whatever
		// the server does (with a wide margin for a loaded machine).
		$this->assertLessThan( 5.0, microtime( true ) - $started );
	}

	public static function provideRawServers() {
		yield 'a chunked answer' => [ '/chunked', Outcome::DECIDED, '' ];
		yield 'a malformed chunked answer' => [ '/badchunk', Outcome::FAULT, 'not editgate' ];
		yield 'something that is not HTTP' => [ '/garbage', Outcome::FAULT, 'not editgate' ];
		yield 'an answer cut short' => [ '/short', Outcome::OUTAGE, 'before a complete answer' ];
		yield 'headers without end' => [ '/bighead', Outcome::FAULT, 'more than' ];
		yield 'an answer read by its length, the connection left open' => [ '/exact', Outcome::DECIDED, '' ];
		yield 'closed without a word' => [ '/close', Outcome::OUTAGE, 'before a complete answer' ];
	}

	/**
	 * What `php -S` cannot send, from a raw server: over TCP and over the Unix socket.
	 *
	 * @dataProvider provideRawServers
	 */
	public function testRawAnswers( string $prefix, string $kind, string $logged ) {
		$dir = sys_get_temp_dir() . '/editgate-raw-' . getmypid();
		@mkdir( $dir );
		$socket = "$dir/raw.sock";
		$server = proc_open(
			[ PHP_BINARY, __DIR__ . '/../fixtures/raw.php', $socket, "$dir/port" ],
			[ [ 'file', '/dev/null', 'r' ], [ 'file', '/dev/null', 'w' ], [ 'file', '/dev/null', 'w' ] ],
			$pipes
		);
		try {
			for ( $i = 0; $i < 100 && !is_file( "$dir/port" ); $i++ ) {
				usleep( 20000 );
			}
			$port = (int)file_get_contents( "$dir/port" );
			foreach ( [ 'tcp' => null, 'unix socket' => $socket ] as $how => $path ) {
				$logger = new TestLogger();
				$client = new EditGateClient( "http://127.0.0.1:$port$prefix", 0.5, $logger, new StreamTransport( $path ) );
				$started = microtime( true );
				$outcome = $client->check( self::payload() );
				$this->assertSame( $kind, $outcome->kind, "$how: " . implode( "\n", $logger->lines ) );
				$this->assertLessThan( 1.5, microtime( true ) - $started, "$how: held past its deadline" );
				if ( $kind === Outcome::DECIDED ) {
					$this->assertSame( 'tor-anon', $outcome->decision->ruleId, $how );
				} else {
					$this->assertStringContainsString( $logged, implode( "\n", $logger->lines ), $how );
				}
			}
		} finally {
			proc_terminate( $server );
			proc_close( $server );
			@unlink( $socket );
			@unlink( "$dir/port" );
			@rmdir( $dir );
		}
	}

	public function testNothingListensIsAnOutage() {
		$probe = stream_socket_server( 'tcp://127.0.0.1:0' );
		$port = (int)substr( strrchr( stream_socket_get_name( $probe, false ), ':' ), 1 );
		fclose( $probe );
		$client = new EditGateClient( "http://127.0.0.1:$port", 0.5, new TestLogger() );
		$this->assertSame( Outcome::OUTAGE, $client->check( self::payload() )->kind );
	}
}
