<?php

use MediaWiki\Extension\EditGate\CheckPayload;
use PHPUnit\Framework\TestCase;

/**
 * @covers \MediaWiki\Extension\EditGate\CheckPayload
 */
class CheckPayloadTest extends TestCase {

	private function build( array $overrides = [] ): array {
		$args = array_merge( [
			'ip' => '192.0.2.1',
			'xff' => null,
			'wiki' => 'enwiki',
			'action' => 'edit',
			'kind' => CheckPayload::KIND_REGISTERED,
			'groups' => [ '*', 'user' ],
			'rights' => [ 'edit' ],
			'editCount' => 12,
			'registration' => '20261101123456',
			'emailConfirmed' => true,
			'requestId' => 'r-1',
		], $overrides );
		return CheckPayload::build( ...array_values( $args ) );
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
			'kind' => CheckPayload::KIND_ANONYMOUS,
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

	public static function provideForwardedFor() {
		yield 'absent' => [ null, [] ];
		yield 'blank' => [ ' ', [] ];
		yield 'chain' => [ '198.51.100.7, 10.0.0.1', [ '198.51.100.7', '10.0.0.1' ] ];
		yield 'garbage dropped' => [ 'unknown, _hidden, 300.1.1.1, 2001:db8::1', [ '2001:db8::1' ] ];
		yield 'ports' => [ '192.0.2.9:8080, [2001:db8::2]:443, [2001:db8::3]', [ '192.0.2.9', '2001:db8::2', '2001:db8::3' ] ];
	}

	/**
	 * @dataProvider provideForwardedFor
	 */
	public function testForwardedFor( $header, array $expected ) {
		$this->assertSame( $expected, CheckPayload::forwardedFor( $header ) );
	}

	public function testForwardedForKeepsTheNearestEntries() {
		$chain = [];
		for ( $i = 1; $i <= 40; $i++ ) {
			$chain[] = "192.0.2.$i";
		}
		$out = CheckPayload::forwardedFor( implode( ', ', $chain ) );
		$this->assertCount( CheckPayload::MAX_FORWARDED_FOR, $out );
		$this->assertSame( '192.0.2.9', $out[0] );
		$this->assertSame( '192.0.2.40', end( $out ) );
	}
}
