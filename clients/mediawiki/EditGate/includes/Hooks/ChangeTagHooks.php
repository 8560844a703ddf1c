<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate\Hooks;

use MediaWiki\ChangeTags\Hook\ChangeTagsListActiveHook;
use MediaWiki\ChangeTags\Hook\ListDefinedTagsHook;
use MediaWiki\Extension\EditGate\Gate;

/**
 * Tags the changes made from an address whose sources give a tag (the policy's `tag` on a
 * source: `tor` for Tor exits, as TorBlock does), whatever the verdict: an established
 * account editing through Tor is allowed, and patrollers still see it.
 *
 * The tags come from the answer editgate already gave in the same request (the permission
 * check of the edit, creation, upload or move): never a second call. Only the tags listed in
 * $wgEditGateTags are defined and applied.
 *
 * RecentChange_save is handled without implementing its interface, which moves namespace in
 * MediaWiki 1.46 (see BlockHooks).
 */
class ChangeTagHooks implements ListDefinedTagsHook, ChangeTagsListActiveHook {

	/** @var Gate */
	private $gate;
	/** @var string[] */
	private $tags;

	/**
	 * @param \Config|\MediaWiki\Config\Config $config
	 * @param Gate $gate
	 */
	public function __construct( $config, Gate $gate ) {
		$this->gate = $gate;
		$this->tags = array_values( array_map( 'strval', (array)$config->get( 'EditGateTags' ) ) );
	}

	/**
	 * @param string[] &$tags
	 * @return bool
	 */
	public function onListDefinedTags( &$tags ) {
		$tags = array_merge( $tags, $this->tags );
		return true;
	}

	/**
	 * @param string[] &$tags
	 * @return bool
	 */
	public function onChangeTagsListActive( &$tags ) {
		$tags = array_merge( $tags, $this->tags );
		return true;
	}

	/**
	 * @param \RecentChange|\MediaWiki\RecentChanges\RecentChange $recentChange
	 * @return bool
	 */
	public function onRecentChange_save( $recentChange ) {
		$answer = $this->gate->latest();
		if ( $answer === null ) {
			return true;
		}
		$tags = array_values( array_intersect( $answer->tags, $this->tags ) );
		if ( $tags ) {
			$recentChange->addTags( $tags );
		}
		return true;
	}
}
