<?php

use MediaWiki\Extension\EditGate\CheckPayload;
use PHPUnit\Framework\TestCase;

/**
 * @covers \MediaWiki\Extension\EditGate\CheckPayload
 */
class CheckPayloadTest extends TestCase {

	private function build( array $overrides = [] ): array {
		return CheckPayload::build( array_merge( [
			'ip' => '192.0.2.1',
			'wiki' => 'enwiki',
			'action' => 'edit',
			'kind' => CheckPayload::NAME_REGISTERED,
			'groups' => [ '*', 'user' ],
			'rights' => [ 'edit' ],
			'editCount' => 12,
			'registration' => '20261101123456',
			'emailConfirmed' => true,
			'requestId' => 'r-1',
		], $overrides ) );
	}

	public function testRegisteredAccount() {
		$this->assertSame( [
			'ip' => '192.0.2.1',
			'forwardedFor' => [],
			'wiki' => 'enwiki',
			'action' => 'edit',
			'account' => [
				'kind' => 'ACCOUNT_KIND_REGISTERED',
				'groups' => [ '*', 'user' ],
				'rights' => [ 'edit' ],
				'editCount' => '12',
				'emailConfirmed' => true,
				'registeredAt' => '2026-11-01T12:34:56Z',
			],
			'requestId' => 'r-1',
		], $this->build() );
	}

	public function testAnonymousSendsZeroEditsAndNoRegistration() {
		$p = $this->build( [
			'kind' => CheckPayload::NAME_ANONYMOUS,
			'editCount' => null,
			'registration' => null,
			'emailConfirmed' => false,
		] );
		$this->assertSame( '0', $p['account']['editCount'] );
		$this->assertArrayNotHasKey( 'registeredAt', $p['account'] );
	}

	public static function provideUnknownRegistration() {
		yield 'null' => [ null ];
		yield 'false' => [ false ];
		yield 'not a timestamp' => [ 'yesterday' ];
		yield 'no such date' => [ '20261331000000' ];
	}

	/**
	 * @dataProvider provideUnknownRegistration
	 */
	public function testUnknownRegistrationCountsAsOld( $registration ) {
		$p = $this->build( [ 'registration' => $registration ] );
		$this->assertSame( '1970-01-01T00:00:00Z', $p['account']['registeredAt'] );
	}

	public function testNegativeEditCountIsZero() {
		$this->assertSame( '0', $this->build( [ 'editCount' => -3 ] )['account']['editCount'] );
	}

	public function testJsonShape() {
		// groups and rights stay JSON lists even when MediaWiki hands over keyed arrays.
		$p = $this->build( [ 'groups' => [ 3 => 'sysop' ], 'rights' => [] ] );
		$this->assertSame(
			'{"kind":"ACCOUNT_KIND_REGISTERED","groups":["sysop"],"rights":[],"editCount":"12",' .
				'"emailConfirmed":true,"registeredAt":"2026-11-01T12:34:56Z"}',
			json_encode( $p['account'] )
		);
	}

	public function testABrandNewTemporaryAccountIsSentWithoutARegistrationTime() {
		// Created in this very request: no registration time yet. It must not count as old.
		$p = $this->build( [ 'kind' => CheckPayload::NAME_TEMPORARY, 'registration' => null ] );
		$this->assertArrayNotHasKey( 'registeredAt', $p['account'] );
		$p = $this->build( [ 'kind' => CheckPayload::NAME_TEMPORARY, 'registration' => '20261201000000' ] );
		$this->assertSame( '2026-12-01T00:00:00Z', $p['account']['registeredAt'] );
	}

	public function testUnknownAndMissingFactsAreBugs() {
		$this->expectException( InvalidArgumentException::class );
		$this->build( [ 'xff' => '1.2.3.4' ] );
	}

	public function testAMissingRequiredFactIsABug() {
		$this->expectException( InvalidArgumentException::class );
		CheckPayload::build( [ 'ip' => '192.0.2.1', 'wiki' => 'enwiki', 'action' => 'edit' ] );
	}

	public function testEveryStringEncodesAsJsonAndIsBounded() {
		$p = $this->build( [
			// What a client can put in X-Request-Id when $wgAllowExternalReqID is on.
			'requestId' => "r-\xff\xfe-" . str_repeat( 'x', 300 ),
			'groups' => [ "bad\xc3", str_repeat( 'é', 200 ) ],
			'rights' => array_fill( 0, 600, 'edit' ),
		] );
		$json = json_encode( $p, JSON_INVALID_UTF8_SUBSTITUTE | JSON_THROW_ON_ERROR );
		$this->assertNotSame( '', $json );
		$this->assertLessThanOrEqual( CheckPayload::MAX_REQUEST_ID_BYTES, strlen( $p['requestId'] ) );
		$this->assertLessThanOrEqual( CheckPayload::MAX_NAME_BYTES, strlen( $p['account']['groups'][1] ) );
		$this->assertTrue( mb_check_encoding( $p['account']['groups'][1], 'UTF-8' ), 'cut between characters' );
		$this->assertCount( CheckPayload::MAX_NAMES, $p['account']['rights'] );
	}

	public static function provideAddresses() {
		yield 'absent' => [ null, [] ];
		yield 'blank' => [ ' ', [] ];
		yield 'chain' => [ '198.51.100.7, 10.0.0.1', [ '198.51.100.7', '10.0.0.1' ] ];
		yield 'garbage dropped' => [ 'unknown, _hidden, 300.1.1.1, 2001:db8::1', [ '2001:db8::1' ] ];
		yield 'ports' => [ '192.0.2.9:8080, [2001:db8::2]:443, [2001:db8::3]', [ '192.0.2.9', '2001:db8::2', '2001:db8::3' ] ];
	}

	/**
	 * @dataProvider provideAddresses
	 */
	public function testAddresses( $header, array $expected ) {
		$this->assertSame( $expected, CheckPayload::addresses( $header ) );
	}

	public function testOnlyTheUntrustedPartOfTheChainIsSent() {
		$cdn = static function ( string $ip ): bool {
			return in_array( $ip, [ '203.0.113.10', '203.0.113.11' ], true );
		};
		// The client wrote "198.51.100.7, 192.0.2.50"; the CDN added the client address it saw
		// (192.0.2.50) and its own hop.
		$header = '198.51.100.7, 192.0.2.50, 203.0.113.11';
		$this->assertSame(
			[ '198.51.100.7' ],
			CheckPayload::untrustedForwardedFor( $header, '192.0.2.50', $cdn )
		);
		// Spelled otherwise, the client address is still itself.
		$this->assertSame(
			[],
			CheckPayload::untrustedForwardedFor( '::ffff:192.0.2.50', '192.0.2.50', $cdn )
		);
		// A client on $wgProxyWhitelist: MediaWiki applies nothing of the chain, nor does editgate.
		$this->assertSame(
			[],
			CheckPayload::untrustedForwardedFor( $header, '192.0.2.50', $cdn, [ '192.0.2.50' ] )
		);
	}

	public function testForwardedForKeepsTheNearestEntriesUpToTheServersLimit() {
		$chain = [];
		for ( $i = 1; $i <= 40; $i++ ) {
			$chain[] = "192.0.2.$i";
		}
		$out = $this->build( [ 'forwardedFor' => $chain ] )['forwardedFor'];
		$this->assertCount( CheckPayload::MAX_FORWARDED_FOR, $out );
		$this->assertSame( '192.0.2.9', $out[0] );
		$this->assertSame( '192.0.2.40', end( $out ) );
		$this->assertSame( [ '192.0.2.39', '192.0.2.40' ], $this->build( [ 'forwardedFor' => $chain, 'maxForwardedFor' => 2 ] )['forwardedFor'] );
		$this->assertSame( [], $this->build( [ 'forwardedFor' => $chain, 'maxForwardedFor' => 0 ] )['forwardedFor'] );
	}

	public function testAProbeSendsTheChainAndSaysItIsAProbe() {
		// A probe is decided on the attempt's facts: its chain is sent as an attempt's is.
		$p = $this->build( [ 'forwardedFor' => [ '198.51.100.7' ], 'probe' => true ] );
		$this->assertSame( [ '198.51.100.7' ], $p['forwardedFor'] );
		$this->assertTrue( $p['probe'] );
		$this->assertArrayNotHasKey( 'probe', $this->build() );
	}
}
