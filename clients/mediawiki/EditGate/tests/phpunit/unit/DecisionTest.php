<?php

use MediaWiki\Extension\EditGate\Decision;
use MediaWiki\Extension\EditGate\Reputation;
use PHPUnit\Framework\TestCase;

/**
 * @covers \MediaWiki\Extension\EditGate\Decision
 * @covers \MediaWiki\Extension\EditGate\Reputation
 */
class DecisionTest extends TestCase {

	private const ANSWER = '{"appeal":"https://example.org/appeal","message":"editgate-tor-login",' .
		'"policyVersion":"8e0cb304f954beda","reason":"Tor needs an account","requestId":"r-1",' .
		'"ruleId":"tor-anon","shadowRuleIds":[],"verdict":"VERDICT_REQUIRE_LOGIN"}';

	public function testReadsACheckResponse() {
		$d = Decision::fromJson( self::ANSWER );
		$d->time = '2026-12-06T10:15:02Z';
		$this->assertFalse( $d->allows() );
		$this->assertSame( 'editgate-require-login', $d->apiCode() );
		$this->assertSame( 'editgate-login-required', $d->fallbackMessageKey() );
		$this->assertSame( [
			'verdict' => 'require-login',
			'ruleId' => 'tor-anon',
			'reason' => 'Tor needs an account',
			'message' => 'editgate-tor-login',
			'appeal' => 'https://example.org/appeal',
			'policyVersion' => '8e0cb304f954beda',
			'requestId' => 'r-1',
			'time' => '2026-12-06T10:15:02Z',
		], $d->toApiData() );
		$this->assertSame( 'r-1 tor-anon 2026-12-06T10:15:02Z', $d->reference() );
	}

	public function testAnAnswerKeptReadsBackTheSame() {
		// How Gate::askRemembered keeps an answer between requests.
		$d = Decision::fromJson( self::ANSWER );
		$d->sources = [ 'tor', 'vpn' ];
		$d->tags = [ 'tor' ];
		$d->sharedAddress = true;
		$d->reputation = Reputation::fromArray( [ 'tunnelOperators' => [ 'NORD_VPN' ], 'clientCount' => 27 ] );
		foreach ( [ Decision::ALLOW, Decision::REQUIRE_LOGIN, Decision::BLOCK ] as $verdict ) {
			$d->verdict = $verdict;
			$this->assertEquals( $d, Decision::fromJson( $d->toJson() ), $verdict );
		}
	}

	public function testRequireLoginAsksEachAccountKindForWhatItCanDo() {
		// An anonymous editor logs in or creates an account; a temporary account needs a
		// registered one; a registered account does not qualify yet. A block is one message.
		$d = Decision::fromJson( self::ANSWER );
		$this->assertSame( 'editgate-login-required', $d->fallbackMessageKey( 'anonymous' ) );
		$this->assertSame( 'editgate-login-required-temporary', $d->fallbackMessageKey( 'temporary' ) );
		$this->assertSame( 'editgate-login-required-registered', $d->fallbackMessageKey( 'registered' ) );
		$block = Decision::fromJson( '{"verdict":"VERDICT_BLOCK"}' );
		$this->assertSame( 'editgate-block', $block->fallbackMessageKey( 'registered' ) );
		$this->assertSame( '– default ', $block->reference(), 'no request id, a default, no time yet' );
	}

	public function testVerdicts() {
		$allow = Decision::fromJson( '{"verdict":"VERDICT_ALLOW"}' );
		$this->assertTrue( $allow->allows() );
		$this->assertSame( '', $allow->ruleId );
		$block = Decision::fromJson( '{"verdict":"VERDICT_BLOCK","ruleId":"x"}' );
		$this->assertSame( 'editgate-blocked', $block->apiCode() );
		$this->assertSame( 'editgate-block', $block->fallbackMessageKey() );
	}

	public function testNonStringFieldsAreIgnored() {
		$d = Decision::fromJson( '{"verdict":"VERDICT_BLOCK","ruleId":7,"message":["x"]}' );
		$this->assertSame( '', $d->ruleId );
		$this->assertSame( '', $d->message );
	}

	public function testReadsTheReputation() {
		// As the service writes it (tests/it/reputation.rs): proto3 JSON, empty lists left out.
		$d = Decision::fromJson( '{"verdict":"VERDICT_BLOCK","sources":["spur"],"reputation":{' .
			'"sources":["spur"],"tunnelOperators":["PROTON_VPN","EXPRESS_VPN"],"tunnelTypes":["VPN"],' .
			'"risks":["TUNNEL"],"clientCount":12,"infrastructure":["DATACENTER"]}}' );
		$r = $d->reputation;
		$this->assertInstanceOf( Reputation::class, $r );
		$this->assertSame( [ 'PROTON_VPN', 'EXPRESS_VPN' ], $r->tunnelOperators );
		$this->assertSame( [ 'TUNNEL' ], $r->risks );
		$this->assertSame( [], $r->clientProxies );
		$this->assertSame( 12, $r->clientCount );
		$this->assertNull( Decision::fromJson( '{"verdict":"VERDICT_ALLOW"}' )->reputation, 'no feed holds it' );
		// A uint32 may come as a string in proto3 JSON.
		$this->assertSame( 7, Reputation::fromArray( [ 'clientCount' => '7' ] )->clientCount );
	}

	public static function provideMalformed() {
		yield 'empty' => [ '' ];
		yield 'html' => [ '<html>502 Bad Gateway</html>' ];
		yield 'not an object' => [ '"VERDICT_ALLOW"' ];
		yield 'no verdict' => [ '{"ruleId":"tor-anon"}' ];
		yield 'unspecified' => [ '{"verdict":"VERDICT_UNSPECIFIED"}' ];
		yield 'lower case' => [ '{"verdict":"allow"}' ];
		yield 'number' => [ '{"verdict":1}' ];
		yield 'reputation not an object' => [ '{"verdict":"VERDICT_ALLOW","reputation":"VPN"}' ];
		yield 'reputation list of numbers' => [ '{"verdict":"VERDICT_ALLOW","reputation":{"risks":[1]}}' ];
		yield 'negative client count' => [ '{"verdict":"VERDICT_ALLOW","reputation":{"clientCount":-1}}' ];
		yield 'fractional client count' => [ '{"verdict":"VERDICT_ALLOW","reputation":{"clientCount":1.5}}' ];
	}

	/**
	 * @dataProvider provideMalformed
	 */
	public function testMalformedAnswersAreNeverGuessedAt( string $body ) {
		$this->expectException( UnexpectedValueException::class );
		Decision::fromJson( $body );
	}
}
