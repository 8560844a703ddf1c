<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate\Hooks;

use MediaWiki\Extension\EditGate\Enforcer;
use MediaWiki\Extension\EditGate\Gate;
use MediaWiki\Extension\EditGate\Outcome;
use MediaWiki\User\Hook\GetAutoPromoteGroupsHook;

/**
 * E-mail and autopromotion, each an action the policy rules on (`emailuser`, `autopromote`),
 * where TorBlock hard-codes Tor: a refused address may not send e-mail through the wiki, and
 * an account working from one is not promoted (TorBlock's $wgTorAutoConfirmAge and
 * $wgTorAutoConfirmCount become rules: the shipped policy's Tor rules, which name no action,
 * apply to both).
 */
class UserHooks implements GetAutoPromoteGroupsHook {

	/** @var Gate */
	private $gate;
	/** @var Enforcer */
	private $enforcer;
	/** @var \MediaWiki\User\UserFactory */
	private $userFactory;
	/** @var bool */
	private $email;
	/** @var bool */
	private $autopromote;

	/**
	 * @param \Config|\MediaWiki\Config\Config $config
	 * @param Gate $gate
	 * @param Enforcer $enforcer
	 * @param \MediaWiki\User\UserFactory $userFactory
	 */
	public function __construct( $config, Gate $gate, Enforcer $enforcer, $userFactory ) {
		$this->gate = $gate;
		$this->enforcer = $enforcer;
		$this->userFactory = $userFactory;
		$this->email = (bool)$config->get( 'EditGateEmail' );
		$this->autopromote = (bool)$config->get( 'EditGateAutopromote' );
	}

	/**
	 * MediaWiki 1.41 and later (1.43): e-mail through Special:EmailUser or the API.
	 *
	 * @param \MediaWiki\Permissions\Authority $sender
	 * @param \StatusValue $status
	 * @return bool
	 */
	public function onEmailUserAuthorizeSend( $sender, $status ) {
		if ( !$this->email || PHP_SAPI === 'cli' ) {
			return true;
		}
		$refusal = $this->enforcer->refusal( $this->userFactory->newFromAuthority( $sender ), 'emailuser' );
		if ( $refusal === null ) {
			return true;
		}
		$status->fatal( $refusal );
		return false;
	}

	/**
	 * Every e-mail path of MediaWiki 1.39, and the API's of 1.43 (its `canSend()` runs only
	 * this hook, which 1.41 deprecated silently, without a notice). Where both hooks run, the
	 * second reads the first's answer.
	 *
	 * @param \User|\MediaWiki\User\User $user
	 * @param array|bool &$hookErr
	 * @return bool
	 */
	public function onUserCanSendEmail( $user, &$hookErr ) {
		if ( !$this->email || PHP_SAPI === 'cli' ) {
			return true;
		}
		$refusal = $this->enforcer->refusal( $user, 'emailuser' );
		if ( $refusal === null ) {
			return true;
		}
		$hookErr = [ 'permissionserrors', $refusal->getKey(), $refusal->getParams() ];
		return false;
	}

	/**
	 * Withholds the autopromotion groups from an account working from an address the policy
	 * refuses `autopromote` for. Runs whenever MediaWiki computes a logged-in user's groups,
	 * so on page views too: off by default ($wgEditGateAutopromote; what it costs is in
	 * BENCHMARKS.md), asked as a probe, and only when there is a group to withhold. An outage
	 * or a fault withholds nothing: autopromotion is not a gate, the edit checks are.
	 *
	 * @param \User|\MediaWiki\User\User $user
	 * @param string[] &$promote
	 * @return bool
	 */
	public function onGetAutoPromoteGroups( $user, &$promote ) {
		if ( !$this->autopromote || !$promote || PHP_SAPI === 'cli' || !$user->isRegistered() ) {
			return true;
		}
		// Only the account making this request works from its address: another account's
		// groups (a user list, a rights log) are no business of this address.
		if ( \RequestContext::getMain()->getUser()->getName() !== $user->getName() ) {
			return true;
		}
		$outcome = $this->gate->ask( $user, 'autopromote', true, true );
		if ( $outcome->kind === Outcome::DECIDED && !$outcome->decision->allows() ) {
			$promote = [];
		}
		return true;
	}
}
