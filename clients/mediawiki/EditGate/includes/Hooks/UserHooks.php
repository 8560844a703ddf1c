<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate\Hooks;

use MediaWiki\Extension\EditGate\Compat;
use MediaWiki\Extension\EditGate\Enforcer;
use MediaWiki\Extension\EditGate\Gate;
use MediaWiki\Extension\EditGate\Outcome;
use MediaWiki\User\Hook\GetAutoPromoteGroupsHook;

/**
 * E-mail and autopromotion, each an action the policy rules on (`emailuser`, `autopromote`),
 * where TorBlock hard-codes Tor: a refused address may not send e-mail through the wiki, and
 * an account working from one is not promoted (TorBlock's $wgTorAutoConfirmAge and
 * $wgTorAutoConfirmCount become rules: the shipped policy's Tor rules, which name no action,
 * apply to both). And TorBlock's autopromotion condition `tor` (APCOND_TOR), for a
 * $wgAutopromote that names it.
 *
 * The condition is handled through AutopromoteCondition up to MediaWiki 1.45 and
 * UserRequirementsCondition from 1.46, which deprecates the former: extension.json registers
 * both, the first with `deprecated: true`, so that a release which deprecates it skips that
 * handler instead of warning, and neither interface is implemented (1.39–1.45 lack the new
 * one, a later release may drop the old).
 */
class UserHooks implements GetAutoPromoteGroupsHook {

	/** TorBlock's autopromotion condition: the client address is a Tor exit. */
	public const APCOND_TOR = 'tor';

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
	/** @var int Seconds an autopromotion answer is kept in the account's session */
	private $autopromoteCache;
	/** @var string[] */
	private $torSources;

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
		$this->autopromoteCache = max( 0, (int)$config->get( 'EditGateAutopromoteCache' ) );
		$this->torSources = (array)$config->get( 'EditGateTorSources' );
	}

	/**
	 * Defines APCOND_TOR, as TorBlock does, when TorBlock is not loaded (from the registration
	 * callback).
	 */
	public static function defineTorCondition(): void {
		if ( !defined( 'APCOND_TOR' ) && !Compat::extensionLoaded( 'TorBlock' ) ) {
			define( 'APCOND_TOR', self::APCOND_TOR );
		}
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
	 * so on page views too: the answer is kept in the account's session for
	 * $wgEditGateAutopromoteCache seconds ({@see Gate::askRemembered}), asked as a probe, and
	 * only when there is a group to withhold. An outage or a fault withholds nothing:
	 * autopromotion is not a gate, the edit checks are.
	 *
	 * @param \User|\MediaWiki\User\User $user
	 * @param string[] &$promote
	 * @return bool
	 */
	public function onGetAutoPromoteGroups( $user, &$promote ) {
		if ( !$this->autopromote || !$promote || !$this->asksFor( $user ) ) {
			return true;
		}
		$outcome = $this->gate->askRemembered( $user, 'autopromote', $this->autopromoteCache );
		if ( $outcome->kind === Outcome::DECIDED && !$outcome->decision->allows() ) {
			$promote = [];
		}
		return true;
	}

	/**
	 * MediaWiki up to 1.45: TorBlock's `tor` condition in $wgAutopromote.
	 *
	 * @param string|int $type
	 * @param array $args
	 * @param \User|\MediaWiki\User\User $user
	 * @param bool|null &$result
	 * @return bool
	 */
	public function onAutopromoteCondition( $type, $args, $user, &$result ) {
		if ( $type === self::APCOND_TOR && !Compat::extensionLoaded( 'TorBlock' ) ) {
			$result = $this->fromTorExit( $user );
		}
		return true;
	}

	/**
	 * MediaWiki 1.46 and later: TorBlock's `tor` condition, true only for the account making
	 * this request, on this wiki.
	 *
	 * @param string|int $type
	 * @param array $args
	 * @param \MediaWiki\User\UserIdentity $user
	 * @param bool $isPerformingRequest
	 * @param bool|null &$result
	 */
	public function onUserRequirementsCondition(
		$type, array $args, $user, bool $isPerformingRequest, ?bool &$result
	): void {
		if ( $type !== self::APCOND_TOR || Compat::extensionLoaded( 'TorBlock' ) ) {
			return;
		}
		$local = !method_exists( $user, 'getWikiId' ) || $user->getWikiId() === false;
		$result = $isPerformingRequest && $local
			&& $this->fromTorExit( $this->userFactory->newFromUserIdentity( $user ) );
	}

	/**
	 * @param \User|\MediaWiki\User\User $user
	 * @return bool The account asks from an address in one of $wgEditGateTorSources
	 */
	private function fromTorExit( $user ): bool {
		if ( !$this->asksFor( $user ) ) {
			return false;
		}
		$outcome = $this->gate->askRemembered( $user, 'autopromote', $this->autopromoteCache );
		return $outcome->decision !== null
			&& array_intersect( $outcome->decision->sources, $this->torSources ) !== [];
	}

	/**
	 * @param \User|\MediaWiki\User\User $user
	 * @return bool `$user` is the registered account making this web request: only it works
	 *   from its address (another account's groups, in a user list or a rights log, are no
	 *   business of this address)
	 */
	private function asksFor( $user ): bool {
		return PHP_SAPI !== 'cli' && $user->isRegistered()
			&& Compat::mainContext()->getUser()->getName() === $user->getName();
	}
}
