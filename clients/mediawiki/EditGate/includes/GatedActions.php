<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

/**
 * Which permission actions are sent to editgate: by default every action but `read`, as
 * TorBlock refuses every action but those in `$wgTorAllowedActions` (`read`). The policy's
 * `actions` key then decides what each action gets.
 *
 * Pure PHP with no MediaWiki dependency (unit-tested in tests/phpunit/unit).
 */
class GatedActions {

	/** `$wgEditGateActions` meaning "every action but the exempt ones". */
	public const ALL = '*';

	/**
	 * Action API modules that change the wiki with no permission check on a page, and the
	 * action (their right) they are asked about. Every other module that saves is asked
	 * about through the permission check on its page (`edit`, `move`, `rollback`, …), and
	 * the account and session modules (login, preferences, watchlist) are not asked about.
	 */
	private const API_MODULES = [
		'block' => 'block',
		'import' => 'import',
		'managetags' => 'managechangetags',
		'revisiondelete' => 'deleterevision',
		'tag' => 'changetags',
		'unblock' => 'unblock',
		'userrights' => 'userrights',
	];

	/** The same operations' special pages, asked about when their form is submitted. */
	private const SPECIAL_PAGES = [
		'Block' => 'block',
		'EditTags' => 'changetags',
		'Import' => 'import',
		'Revisiondelete' => 'deleterevision',
		'Tags' => 'managechangetags',
		'Unblock' => 'unblock',
		'Userrights' => 'userrights',
	];

	/** @var string[]|null The actions sent; null: all but the exempt ones */
	private $actions;
	/** @var string[] Never sent */
	private $exempt;

	/**
	 * @param string|string[] $actions `$wgEditGateActions`: '*' or a list
	 * @param string[] $exempt `$wgEditGateExemptActions`
	 */
	public function __construct( $actions, array $exempt ) {
		$this->actions = $actions === self::ALL || $actions === [ self::ALL ]
			? null
			: array_values( array_map( 'strval', (array)$actions ) );
		$this->exempt = array_values( array_map( 'strval', $exempt ) );
	}

	/**
	 * @param string $action A permission action (`edit`, `rollback`, `changetags`, …)
	 * @return bool Whether editgate decides it
	 */
	public function gates( string $action ): bool {
		if ( in_array( $action, $this->exempt, true ) ) {
			return false;
		}
		return $this->actions === null || in_array( $action, $this->actions, true );
	}

	/**
	 * @param string $module An Action API module name
	 * @return string|null The action it is asked about, if it has no permission check on a page
	 */
	public static function forApiModule( string $module ): ?string {
		return self::API_MODULES[$module] ?? null;
	}

	/**
	 * @param string $name A special page's canonical name
	 * @return string|null The action its form submission is asked about
	 */
	public static function forSpecialPage( string $name ): ?string {
		return self::SPECIAL_PAGES[$name] ?? null;
	}
}
