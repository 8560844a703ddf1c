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
		], $d->toApiData() );
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
