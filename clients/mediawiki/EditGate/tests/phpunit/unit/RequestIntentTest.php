<?php

use MediaWiki\Extension\EditGate\GatedActions;
use MediaWiki\Extension\EditGate\RequestIntent;
use PHPUnit\Framework\TestCase;

/**
 * What makes a permission check an attempt, and which actions are checked at all.
 *
 * @covers \MediaWiki\Extension\EditGate\RequestIntent
 * @covers \MediaWiki\Extension\EditGate\GatedActions
 */
class RequestIntentTest extends TestCase {

	private static function has( array $params ): callable {
		return static function ( string $name ) use ( $params ): bool {
			return in_array( $name, $params, true );
		};
	}

	public function testEveryMethodButGetAndHeadCanWrite() {
		// The REST API saves on PUT; a client may use any method it likes.
		foreach ( [ 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'put', 'PROPFIND', '' ] as $method ) {
			$this->assertTrue( RequestIntent::canWrite( $method, self::has( [] ) ), $method );
		}
		foreach ( [ 'GET', 'HEAD', 'get' ] as $method ) {
			$this->assertFalse( RequestIntent::canWrite( $method, self::has( [ 'title', 'action' ] ) ), $method );
		}
	}

	public function testAGetWithATokenCanWrite() {
		// Rollback and patrol links save on a GET with `token`; forms carry `wpEditToken`.
		$this->assertTrue( RequestIntent::canWrite( 'GET', self::has( [ 'action', 'token' ] ) ) );
		$this->assertTrue( RequestIntent::canWrite( 'HEAD', self::has( [ 'wpEditToken' ] ) ) );
	}

	public function testEveryActionButReadIsGatedByDefault() {
		$gated = new GatedActions( GatedActions::ALL, [ 'read' ] );
		foreach ( [ 'edit', 'create', 'rollback', 'changetags', 'delete', 'protect', 'import', 'block', 'move' ] as $a ) {
			$this->assertTrue( $gated->gates( $a ), $a );
		}
		$this->assertFalse( $gated->gates( 'read' ) );
		$this->assertTrue( ( new GatedActions( [ '*' ], [] ) )->gates( 'read' ), 'a list holding only * means all' );
	}

	public function testAListGatesOnlyItsActionsLessTheExemptOnes() {
		$gated = new GatedActions( [ 'edit', 'move', 'read' ], [ 'read' ] );
		$this->assertTrue( $gated->gates( 'edit' ) );
		$this->assertTrue( $gated->gates( 'move' ) );
		$this->assertFalse( $gated->gates( 'rollback' ) );
		$this->assertFalse( $gated->gates( 'read' ), 'exempt wins' );
	}

	public function testRightsOnlyOperationsAreAskedWithTheirRight() {
		// Changing tags and blocking have no permission check on a page: MediaWiki checks
		// the right alone, so the module and the form are asked about themselves.
		$this->assertSame( 'changetags', GatedActions::forApiModule( 'tag' ) );
		$this->assertSame( 'block', GatedActions::forApiModule( 'block' ) );
		$this->assertSame( 'changetags', GatedActions::forSpecialPage( 'EditTags' ) );
		$this->assertSame( 'userrights', GatedActions::forSpecialPage( 'Userrights' ) );
		// Modules that act on a page are asked through its permission check; account and
		// session modules are never asked.
		foreach ( [ 'edit', 'move', 'rollback', 'clientlogin', 'login', 'options', 'watch', 'query' ] as $module ) {
			$this->assertNull( GatedActions::forApiModule( $module ), $module );
		}
		$this->assertNull( GatedActions::forSpecialPage( 'UserLogin' ) );
	}
}
