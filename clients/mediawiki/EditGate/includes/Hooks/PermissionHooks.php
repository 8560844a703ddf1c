<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate\Hooks;

use MediaWiki\Extension\EditGate\Gate;
use MediaWiki\Extension\EditGate\Outcome;
use MediaWiki\Extension\EditGate\Refusal;
use MediaWiki\Permissions\Hook\GetUserPermissionsErrorsExpensiveHook;

/**
 * Refuses an action editgate refuses.
 */
class PermissionHooks implements GetUserPermissionsErrorsExpensiveHook {

	/** @var Gate */
	private $gate;
	/** @var string[] */
	private $actions;
	/** @var bool */
	private $failOpen;

	/**
	 * @param \Config|\MediaWiki\Config\Config $config
	 * @param Gate $gate
	 */
	public function __construct( $config, Gate $gate ) {
		$this->gate = $gate;
		$this->actions = (array)$config->get( 'EditGateActions' );
		$this->failOpen = (bool)$config->get( 'EditGateFailOpen' );
	}

	/**
	 * Refuses an action editgate refuses. When editgate cannot be reached, does not answer in
	 * time or fails (5xx), follows $wgEditGateFailOpen; when it answers something that cannot
	 * be used (a 4xx, a redirect, a page that is not editgate's), refuses and logs an error.
	 *
	 * MediaWiki runs this hook for saves, API actions and account creation, and also when an
	 * edit form is only shown or a tool asks `intestactions`: a request that is not a POST is
	 * sent as a probe, which editgate decides alike but does not count as an attempt.
	 *
	 * @param \Title|\MediaWiki\Title\Title $title
	 * @param \User|\MediaWiki\User\User $user
	 * @param string $action
	 * @param array|string|\MessageSpecifier &$result
	 * @return bool
	 */
	public function onGetUserPermissionsErrorsExpensive( $title, $user, $action, &$result ) {
		// Maintenance scripts run by the operator have no client address to judge.
		if ( PHP_SAPI === 'cli' || !in_array( $action, $this->actions, true ) ) {
			return true;
		}
		$refusal = self::refusal( $this->gate, $this->gate->ask( $user, $action ), $user, $action, $this->failOpen, $title );
		if ( $refusal === null ) {
			return true;
		}
		$result = $refusal;
		return false;
	}

	/**
	 * The refusal for an outcome, or null when the action goes through.
	 *
	 * @param Gate $gate
	 * @param Outcome $outcome
	 * @param \User|\MediaWiki\User\User $user
	 * @param string $action
	 * @param bool $failOpen
	 * @param \Title|\MediaWiki\Title\Title|null $title
	 * @return \IApiMessage|\MediaWiki\Api\IApiMessage|null
	 */
	public static function refusal( Gate $gate, Outcome $outcome, $user, string $action, bool $failOpen, $title ) {
		$logger = $gate->logger();
		if ( $outcome->decision !== null ) {
			if ( $outcome->decision->allows() ) {
				return null;
			}
			$loggedOut = !$user->isRegistered() || $user->isTemp();
			return Refusal::fromDecision( $outcome->decision, $loggedOut, $title );
		}
		if ( $outcome->kind === Outcome::FAULT ) {
			$logger->error( 'editgate gave no usable answer for {action}: refused', [ 'action' => $action ] );
			return Refusal::error();
		}
		if ( $failOpen ) {
			$logger->warning( 'editgate could not decide {action}; failing open: allowed', [ 'action' => $action ] );
			return null;
		}
		$logger->warning( 'editgate could not decide {action}; failing closed: refused', [ 'action' => $action ] );
		return Refusal::unavailable();
	}
}
