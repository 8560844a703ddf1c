<?php
/**
 * Hooks for the EditGate extension: asks editgate whether an action may go through.
 *
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

use MediaWiki\Logger\LoggerFactory;
use MediaWiki\Permissions\Hook\GetUserPermissionsErrorsExpensiveHook;
use Psr\Log\LoggerInterface;

class Hooks implements GetUserPermissionsErrorsExpensiveHook {

	/** @var EditGateClient */
	private $client;
	/** @var \MediaWiki\User\UserGroupManager */
	private $userGroupManager;
	/** @var \MediaWiki\Permissions\PermissionManager */
	private $permissionManager;
	/** @var \ProxyLookup|\MediaWiki\Request\ProxyLookup */
	private $proxyLookup;
	/** @var LoggerInterface */
	private $logger;
	/** @var string[] */
	private $actions;
	/** @var bool */
	private $failOpen;
	/** @var string */
	private $wikiId;
	/** @var int */
	private $maxForwardedFor;
	/** @var string[] */
	private $proxyWhitelist;

	/**
	 * What editgate answered in this request, by (user, action, address, probe): MediaWiki
	 * checks the same permission several times while saving one edit, and editgate is asked
	 * once.
	 *
	 * @var array<string,Decision>
	 */
	private $answers = [];

	/**
	 * Why editgate could not decide in this request, once it could not. It is then not asked
	 * again until the next request, so a frozen editgate costs one timeout per request, not
	 * one per action checked (creating a page checks `edit` and `create`).
	 *
	 * @var Outcome|null
	 */
	private $failed;

	/**
	 * @param \Config|\MediaWiki\Config\Config $config
	 * @param \ProxyLookup|\MediaWiki\Request\ProxyLookup $proxyLookup
	 * @param \MediaWiki\User\UserGroupManager $userGroupManager
	 * @param \MediaWiki\Permissions\PermissionManager $permissionManager
	 * @param EditGateClient|null $client For tests; default from the configuration
	 * @param LoggerInterface|null $logger For tests; default the EditGate channel
	 */
	public function __construct(
		$config,
		$proxyLookup,
		$userGroupManager,
		$permissionManager,
		?EditGateClient $client = null,
		?LoggerInterface $logger = null
	) {
		$this->logger = $logger ?? LoggerFactory::getInstance( 'EditGate' );
		$this->client = $client ?? new EditGateClient(
			(string)$config->get( 'EditGateUrl' ),
			$config->get( 'EditGateTimeout' ),
			$this->logger
		);
		$this->proxyLookup = $proxyLookup;
		$this->userGroupManager = $userGroupManager;
		$this->permissionManager = $permissionManager;
		$this->actions = (array)$config->get( 'EditGateActions' );
		$this->failOpen = (bool)$config->get( 'EditGateFailOpen' );
		// The database name by default: what policy files are named after on Wikimedia's
		// wikis. WikiMap's wiki id is `dbname-prefix` with a table prefix (and escapes `-`),
		// which would find no policy file and get the global default.
		$this->wikiId = (string)( $config->get( 'EditGateWikiId' ) ?? $config->get( 'DBname' ) );
		$this->maxForwardedFor = (int)$config->get( 'EditGateMaxForwardedFor' );
		$this->proxyWhitelist = (array)$config->get( 'ProxyWhitelist' );
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
		$request = $user->getRequest();
		$ip = (string)$request->getIP();
		$probe = !$request->wasPosted();
		$key = implode( "\n", [ $user->getName(), $action, $ip, $probe ? 'probe' : 'attempt' ] );
		$decision = $this->answers[$key] ?? null;
		if ( $decision === null && $this->failed === null ) {
			$outcome = $this->client->check( $this->payload( $user, $action, $request, $ip, $probe ) );
			if ( $outcome->decision !== null ) {
				$decision = $this->answers[$key] = $outcome->decision;
			} else {
				$this->failed = $outcome;
			}
		}

		if ( $decision === null ) {
			if ( $this->failed !== null && $this->failed->kind === Outcome::OUTAGE && $this->failOpen ) {
				$this->logger->warning( 'editgate could not decide {action}; failing open: allowed', [ 'action' => $action ] );
				return true;
			}
			if ( $this->failed !== null && $this->failed->kind === Outcome::FAULT ) {
				$this->logger->error( 'editgate gave no usable answer for {action}: refused', [ 'action' => $action ] );
				$result = Refusal::error();
				return false;
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
	 * @param \User|\MediaWiki\User\User $user
	 * @param string $action
	 * @param \WebRequest|\MediaWiki\Request\WebRequest $request
	 * @param string $ip The client address, after MediaWiki's trusted-proxy rules
	 * @param bool $probe Not a POST: nothing is being saved
	 * @return array
	 */
	private function payload( $user, string $action, $request, string $ip, bool $probe ): array {
		// A temporary account is checked first: it is also "registered" to MediaWiki, and
		// must never be sent as a registered account.
		if ( $user->isTemp() ) {
			$kind = CheckPayload::KIND_TEMPORARY;
		} elseif ( $user->isRegistered() ) {
			$kind = CheckPayload::KIND_REGISTERED;
		} else {
			$kind = CheckPayload::KIND_ANONYMOUS;
		}
		$registered = $kind !== CheckPayload::KIND_ANONYMOUS;
		$xff = $request->getHeader( 'X-Forwarded-For' );
		$proxyLookup = $this->proxyLookup;
		return CheckPayload::build( [
			'ip' => $ip,
			'forwardedFor' => CheckPayload::untrustedForwardedFor(
				$xff === false ? null : $xff,
				$ip,
				static function ( string $entry ) use ( $proxyLookup ): bool {
					return $proxyLookup->isTrustedProxy( $entry );
				},
				$this->proxyWhitelist
			),
			'wiki' => $this->wikiId,
			'action' => $action,
			'kind' => $kind,
			'groups' => $this->userGroupManager->getUserEffectiveGroups( $user ),
			'rights' => $this->permissionManager->getUserPermissions( $user ),
			'editCount' => $registered ? $user->getEditCount() : 0,
			'registration' => $registered ? $user->getRegistration() : null,
			'emailConfirmed' => $registered && $user->isEmailConfirmed(),
			'requestId' => $request::getRequestId(),
			'probe' => $probe,
			'maxForwardedFor' => $this->maxForwardedFor,
		] );
	}
}
