<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

/**
 * The classes MediaWiki moved under namespaces, by their new names where they exist:
 * MediaWiki 1.43 deprecates the old names (`ApiMessage`, `Message`, `RawMessage`, `Html`,
 * `RequestContext`; `ExtensionRegistry` from 1.44), and later releases drop them; 1.39 knows
 * only the old ones.
 */
class Compat {

	/**
	 * @param string $new The namespaced name
	 * @param string $old The global name of older releases
	 * @return string The one this MediaWiki has
	 */
	public static function className( string $new, string $old ): string {
		return class_exists( $new ) ? $new : $old;
	}

	/**
	 * @param string $name An extension's name
	 * @return bool It is loaded on this wiki
	 */
	public static function extensionLoaded( string $name ): bool {
		$registry = self::className( 'MediaWiki\Registration\ExtensionRegistry', 'ExtensionRegistry' );
		return $registry::getInstance()->isLoaded( $name );
	}

	/**
	 * @return \RequestContext|\MediaWiki\Context\RequestContext This request's context
	 */
	public static function mainContext() {
		$context = self::className( 'MediaWiki\Context\RequestContext', 'RequestContext' );
		return $context::getMain();
	}
}
