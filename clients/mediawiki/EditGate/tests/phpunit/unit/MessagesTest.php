<?php

use PHPUnit\Framework\TestCase;

/**
 * Every message the extension can show exists in English and is documented for translators,
 * including every message key the shipped policies name, so that no editor ever sees a raw
 * ⧼key⧽.
 *
 * @coversNothing
 */
class MessagesTest extends TestCase {

	private static function messages( string $lang ): array {
		$json = json_decode( file_get_contents( __DIR__ . "/../../../i18n/$lang.json" ), true );
		unset( $json['@metadata'] );
		return $json;
	}

	/**
	 * Message keys named in the shipped policy directory: `message` and `default_message`
	 * values that look like keys (policy text has spaces).
	 */
	private static function policyKeys(): array {
		$dir = __DIR__ . '/../../../../../../policies';
		$files = array_merge( glob( "$dir/*.toml" ), glob( "$dir/wikis/*.toml" ) );
		$keys = [];
		foreach ( $files as $file ) {
			preg_match_all( '/^\s*(?:default_)?message\s*=\s*"([A-Za-z0-9_.:-]+)"/m', file_get_contents( $file ), $m );
			$keys = array_merge( $keys, $m[1] );
		}
		return array_unique( $keys );
	}

	public function testShippedPolicyKeysExist() {
		$keys = self::policyKeys();
		$this->assertContains( 'editgate-tor-login', $keys, 'the policy scan finds the keys' );
		$en = self::messages( 'en' );
		foreach ( $keys as $key ) {
			$this->assertArrayHasKey( $key, $en, "policies/ names message `$key`" );
		}
	}

	public function testEveryMessageIsDocumented() {
		$en = array_keys( self::messages( 'en' ) );
		$qqq = array_keys( self::messages( 'qqq' ) );
		sort( $en );
		sort( $qqq );
		$this->assertSame( $en, $qqq );
	}

	public function testCodeUsesOnlyDefinedMessages() {
		$en = self::messages( 'en' );
		$code = '';
		foreach ( glob( __DIR__ . '/../../../includes/*.php' ) as $file ) {
			$code .= file_get_contents( $file );
		}
		preg_match_all( "/'(editgate-[a-z-]+)'/", $code, $m );
		$this->assertNotEmpty( $m[1] );
		// API error codes are messages too: the wrappers of refusals.
		foreach ( array_unique( $m[1] ) as $key ) {
			$this->assertArrayHasKey( $key, $en, "the code names `$key`" );
		}
	}
}
