<?php
/**
 * Hooks for the EditGate extension: asks editgate whether an action may go through.
 *
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

use Config;
use MediaWiki\Http\HttpRequestFactory;
use MediaWiki\Logger\LoggerFactory;
use MediaWiki\Permissions\Hook\GetUserPermissionsErrorsExpensiveHook;
use MediaWiki\Permissions\PermissionManager;
use MediaWiki\User\UserGroupManager;
use Psr\Log\LoggerInterface;
use Title;
use User;
use WebRequest;
use WikiMap;

class Hooks implements GetUserPermissionsErrorsExpensiveHook {

	/** @var EditGateClient */
	private $client;
	/** @var UserGroupManager */
	private $userGroupManager;
	/** @var PermissionManager */
	private $permissionManager;
	/** @var LoggerInterface */
	private $logger;
	/** @var string[] */
	private $actions;
	/** @var bool */
	private $failOpen;

	/**
	 * What editgate answered in this request, by (user, action, IP): MediaWiki checks the
	 * same permission several times while saving one edit, and editgate is asked once.
	 *
	 * @var array<string,Decision>
	 */
	private $answers = [];

	/**
	 * Whether editgate already failed to answer in this request. It is then not asked
	 * again until the next request, so a frozen editgate costs one timeout per request,
	 * not one per action checked (creating a page checks `edit` and `create`).
	 *
	 * @var bool
	 */
	private $unavailable = false;

	/**
	 * @param Config $config
	 * @param HttpRequestFactory $httpRequestFactory
	 * @param UserGroupManager $userGroupManager
	 * @param PermissionManager $permissionManager
	 */
	public function __construct(
		Config $config,
		HttpRequestFactory $httpRequestFactory,
		UserGroupManager $userGroupManager,
		PermissionManager $permissionManager
	) {
		$this->logger = LoggerFactory::getInstance( 'EditGate' );
		$this->client = new EditGateClient(
			$httpRequestFactory,
			(string)$config->get( 'EditGateUrl' ),
			(float)$config->get( 'EditGateTimeout' ),
			$this->logger
		);
		$this->userGroupManager = $userGroupManager;
		$this->permissionManager = $permissionManager;
		$this->actions = (array)$config->get( 'EditGateActions' );
		$this->failOpen = (bool)$config->get( 'EditGateFailOpen' );
	}

	/**
	 * Refuses an action editgate refuses, and, when it cannot be asked, follows
	 * $wgEditGateFailOpen. This is the expensive hook, which MediaWiki runs only for real
	 * attempts (saves, API actions, account creation), never while rendering a page view.
	 *
	 * @param Title $title
	 * @param User $user
	 * @param string $action
	 * @param array|string|\MessageSpecifier &$result
	 * @return bool
	 */
	public function onGetUserPermissionsErrorsExpensive( $title, $user, $action, &$result ) {
		// Maintenance scripts run by the operator have no client address to judge.
		if ( PHP_SAPI === 'cli' || !in_array( $action, $this->actions, true ) ) {
			return true;
		}
		$request = $user->getRequest();
		$ip = (string)$request->getIP();
		$key = $user->getName() . "\n" . $action . "\n" . $ip;
		$decision = $this->answers[$key] ?? null;
		if ( $decision === null && !$this->unavailable ) {
			$decision = $this->client->check( $this->payload( $user, $action, $request, $ip ) );
			if ( $decision === null ) {
				$this->unavailable = true;
			} else {
				$this->answers[$key] = $decision;
			}
		}

		if ( $decision === null ) {
			if ( $this->failOpen ) {
				$this->logger->warning( 'editgate could not decide {action}; failing open: allowed', [ 'action' => $action ] );
				return true;
			}
			$this->logger->warning( 'editgate could not decide {action}; failing closed: refused', [ 'action' => $action ] );
			$result = Refusal::unavailable();
			return false;
		}
		if ( $decision->allows() ) {
			return true;
		}
		$loggedOut = !$user->isRegistered() || $user->isTemp();
		$result = Refusal::fromDecision( $decision, $loggedOut, $title );
		return false;
	}

	/**
	 * What editgate is told about the attempt.
	 *
	 * @param User $user
	 * @param string $action
	 * @param WebRequest $request
	 * @param string $ip The client address, after MediaWiki's trusted-proxy rules
	 * @return array
	 */
	private function payload( User $user, string $action, WebRequest $request, string $ip ): array {
		if ( $user->isTemp() ) {
			$kind = CheckPayload::KIND_TEMPORARY;
		} elseif ( $user->isRegistered() ) {
			$kind = CheckPayload::KIND_REGISTERED;
		} else {
			$kind = CheckPayload::KIND_ANONYMOUS;
		}
		$registered = $kind !== CheckPayload::KIND_ANONYMOUS;
		$xff = $request->getHeader( 'X-Forwarded-For' );
		return CheckPayload::build(
			$ip,
			$xff === false ? null : $xff,
			WikiMap::getCurrentWikiId(),
			$action,
			$kind,
			$this->userGroupManager->getUserEffectiveGroups( $user ),
			$this->permissionManager->getUserPermissions( $user ),
			$registered ? $user->getEditCount() : 0,
			$registered ? $user->getRegistration() : null,
			$registered && $user->isEmailConfirmed(),
			WebRequest::getRequestId()
		);
	}
}
