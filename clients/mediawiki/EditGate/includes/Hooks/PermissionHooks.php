<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate\Hooks;

use MediaWiki\Api\Hook\ApiCheckCanExecuteHook;
use MediaWiki\Extension\EditGate\Compat;
use MediaWiki\Extension\EditGate\Enforcer;
use MediaWiki\Extension\EditGate\GatedActions;
use MediaWiki\Extension\EditGate\RequestIntent;
use MediaWiki\Permissions\Hook\GetUserPermissionsErrorsExpensiveHook;
use MediaWiki\SpecialPage\Hook\SpecialPageBeforeExecuteHook;

/**
 * Refuses an action editgate refuses: actions on a page (MediaWiki's permission checks), and
 * the actions MediaWiki checks by right alone (changing tags, blocking, granting rights, …)
 * in the Action API and on special pages. What to refuse is the Enforcer's.
 */
class PermissionHooks implements
	GetUserPermissionsErrorsExpensiveHook,
	ApiCheckCanExecuteHook,
	SpecialPageBeforeExecuteHook
{

	/** @var Enforcer */
	private $enforcer;
	/** @var GatedActions */
	private $actions;

	/**
	 * @param \Config|\MediaWiki\Config\Config $config
	 * @param Enforcer $enforcer
	 */
	public function __construct( $config, Enforcer $enforcer ) {
		$this->enforcer = $enforcer;
		$this->actions = new GatedActions( $config->get( 'EditGateActions' ), (array)$config->get( 'EditGateExemptActions' ) );
	}

	/**
	 * MediaWiki runs this hook for every action that can change the wiki (saves over the
	 * Action API, forms, the REST API, rollback, tags, moves, uploads, account creation, …)
	 * and also when an edit form is only shown or a tool asks `intestactions`: a request
	 * that cannot save anything is sent as a probe, decided alike but not counted as an
	 * attempt ({@see \MediaWiki\Extension\EditGate\RequestIntent}).
	 *
	 * @param \Title|\MediaWiki\Title\Title $title
	 * @param \User|\MediaWiki\User\User $user
	 * @param string $action
	 * @param array|string|\MessageSpecifier &$result
	 * @return bool
	 */
	public function onGetUserPermissionsErrorsExpensive( $title, $user, $action, &$result ) {
		// Maintenance scripts run by the operator have no client address to judge.
		if ( PHP_SAPI === 'cli' || !$this->actions->gates( $action ) ) {
			return true;
		}
		$refusal = $this->enforcer->refusal( $user, $action, $title );
		if ( $refusal === null ) {
			return true;
		}
		$result = $refusal;
		return false;
	}

	/**
	 * Refuses an Action API module that changes the wiki with no permission check on a page
	 * (`action=tag`, `block`, `userrights`, …; {@see GatedActions::forApiModule}), asked with
	 * the action of its right. Modules that act on pages are refused by the permission check
	 * above, with their page.
	 *
	 * @param \ApiBase|\MediaWiki\Api\ApiBase $module
	 * @param \User|\MediaWiki\User\User $user
	 * @param \IApiMessage|\MediaWiki\Api\IApiMessage|string|array &$message
	 * @return bool
	 */
	public function onApiCheckCanExecute( $module, $user, &$message ) {
		$action = GatedActions::forApiModule( $module->getModuleName() );
		if ( $action === null || PHP_SAPI === 'cli' || !$this->actions->gates( $action ) ) {
			return true;
		}
		$refusal = $this->enforcer->refusal( $user, $action );
		if ( $refusal === null ) {
			return true;
		}
		$message = $refusal;
		return false;
	}

	/**
	 * Refuses a form submission on a special page that changes the wiki with no permission
	 * check on a page (Special:Block, Special:EditTags, …; {@see GatedActions::forSpecialPage}).
	 * Showing the form is not asked about: only a request that can save.
	 *
	 * @param \SpecialPage|\MediaWiki\SpecialPage\SpecialPage $special
	 * @param string|null $subPage
	 * @return bool
	 * @throws \PermissionsError When editgate refuses
	 */
	public function onSpecialPageBeforeExecute( $special, $subPage ) {
		$action = GatedActions::forSpecialPage( $special->getName() );
		if ( $action === null || PHP_SAPI === 'cli' || !$this->actions->gates( $action ) ) {
			return true;
		}
		$request = $special->getRequest();
		if ( !RequestIntent::canWrite( (string)$request->getMethod(), [ $request, 'getCheck' ] ) ) {
			return true;
		}
		$refusal = $this->enforcer->refusal( $special->getUser(), $action );
		if ( $refusal === null ) {
			return true;
		}
		// Reported as MediaWiki reports any permission error of a special page. The error as
		// a key and parameters: 1.39 formats each error by spreading it into a message.
		$error = Compat::className( 'MediaWiki\Exception\PermissionsError', 'PermissionsError' );
		throw new $error( $action, [ array_merge( [ $refusal->getKey() ], $refusal->getParams() ) ] );
	}
}
