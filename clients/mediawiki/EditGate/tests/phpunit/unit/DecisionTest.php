<?php

use MediaWiki\Extension\EditGate\Decision;
use PHPUnit\Framework\TestCase;

/**
 * @covers \MediaWiki\Extension\EditGate\Decision
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

	public static function provideMalformed() {
		yield 'empty' => [ '' ];
		yield 'html' => [ '<html>502 Bad Gateway</html>' ];
		yield 'not an object' => [ '"VERDICT_ALLOW"' ];
		yield 'no verdict' => [ '{"ruleId":"tor-anon"}' ];
		yield 'unspecified' => [ '{"verdict":"VERDICT_UNSPECIFIED"}' ];
		yield 'lower case' => [ '{"verdict":"allow"}' ];
		yield 'number' => [ '{"verdict":1}' ];
	}

	/**
	 * @dataProvider provideMalformed
	 */
	public function testMalformedAnswersAreNeverGuessedAt( string $body ) {
		$this->expectException( UnexpectedValueException::class );
		Decision::fromJson( $body );
	}
}
