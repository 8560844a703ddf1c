<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

use Psr\Log\LoggerInterface;

/**
 * The extension's one way to ask editgate (the service `EditGate.Gate`): builds the request
 * from MediaWiki's facts, asks once per (user, action, address, probe) in a request, and
 * keeps the answers, so that every hook (permissions, change tags, AbuseFilter, e-mail,
 * autopromotion) reads the answer of the same request instead of asking again.
 */
class Gate {

	/** The session entry of the answers askRemembered() keeps, and how many it keeps. */
	private const REMEMBERED = 'EditGate.remembered';
	private const REMEMBERED_MAX = 4;

	/** @var EditGateClient */
	private $client;
	/** @var \MediaWiki\User\UserGroupManager */
	private $userGroupManager;
	/** @var \MediaWiki\Permissions\PermissionManager */
	private $permissionManager;
	/** @var \MediaWiki\Permissions\GroupPermissionsLookup */
	private $groupPermissions;
	/** @var \ProxyLookup|\MediaWiki\Request\ProxyLookup */
	private $proxyLookup;
	/** @var LoggerInterface */
	private $logger;
	/** @var string */
	private $wikiId;
	/** @var int */
	private $maxForwardedFor;
	/** @var string[] */
	private $proxyWhitelist;
	/** @var string Keys the remembered answers' session entries ($wgSecretKey); '': none kept */
	private $secret;

	/** @var array<string,Decision> Answers about this request's own attempts and probes, by
	 *   user, action, address and probe */
	private $answers = [];
	/** @var array<string,Decision> Answers about other addresses (askAbout), by address */
	private $addresses = [];
	/** @var Decision|null The latest answer about this request's own client */
	private $latest;
	/**
	 * Why editgate could not decide in this request, once it could not: it is then not asked
	 * again until the next request, so a frozen editgate costs one timeout per request.
	 *
	 * @var Outcome|null
	 */
	private $failed;

	/**
	 * @param \Config|\MediaWiki\Config\Config $config
	 * @param \ProxyLookup|\MediaWiki\Request\ProxyLookup $proxyLookup
	 * @param \MediaWiki\User\UserGroupManager $userGroupManager
	 * @param \MediaWiki\Permissions\PermissionManager $permissionManager
	 * @param \MediaWiki\Permissions\GroupPermissionsLookup $groupPermissions
	 * @param EditGateClient $client
	 * @param LoggerInterface $logger
	 */
	public function __construct(
		$config,
		$proxyLookup,
		$userGroupManager,
		$permissionManager,
		$groupPermissions,
		EditGateClient $client,
		LoggerInterface $logger
	) {
		$this->groupPermissions = $groupPermissions;
		$this->client = $client;
		$this->logger = $logger;
		$this->proxyLookup = $proxyLookup;
		$this->userGroupManager = $userGroupManager;
		$this->permissionManager = $permissionManager;
		// The database name by default: what policy files are named after on Wikimedia's
		// wikis. WikiMap's wiki id is `dbname-prefix` with a table prefix (and escapes `-`),
		// which would find no policy file and get the global default.
		$this->wikiId = (string)( $config->get( 'EditGateWikiId' ) ?? $config->get( 'DBname' ) );
		$this->maxForwardedFor = (int)$config->get( 'EditGateMaxForwardedFor' );
		$this->proxyWhitelist = (array)$config->get( 'ProxyWhitelist' );
		$this->secret = (string)$config->get( 'SecretKey' );
	}

	/**
	 * @return LoggerInterface The EditGate channel
	 */
	public function logger(): LoggerInterface {
		return $this->logger;
	}

	/**
	 * What editgate says about `$user` doing `$action` from this request's client address.
	 * A request that cannot save anything ({@see RequestIntent::canWrite}), or `$probe`, is sent as
	 * a probe: decided on the same facts as an attempt (the forwarded-for chain included), but
	 * not counted as one.
	 *
	 * @param \User|\MediaWiki\User\User $user
	 * @param string $action
	 * @param bool $probe Always a probe (autopromotion is checked on page views)
	 * @param bool $explicitGroups Send the groups the account is a member of, and their
	 *   rights, not its effective ones: asked while MediaWiki computes the effective groups
	 *   (autopromotion), which asking for them would recurse into
	 * @return Outcome
	 */
	public function ask( $user, string $action, bool $probe = false, bool $explicitGroups = false ): Outcome {
		$request = $user->getRequest();
		$ip = (string)$request->getIP();
		$probe = $probe || !RequestIntent::canWrite( (string)$request->getMethod(), [ $request, 'getCheck' ] );
		$key = implode( "\n", [ $user->getName(), $action, $ip, $probe ? 'probe' : 'attempt' ] );
		if ( isset( $this->answers[$key] ) ) {
			return Outcome::decided( $this->answers[$key] );
		}
		if ( $this->failed !== null ) {
			return $this->failed;
		}
		$outcome = $this->client->check( $this->payload( $user, $action, $request, $ip, $probe, $explicitGroups ) );
		if ( $outcome->decision !== null ) {
			$this->answers[$key] = $this->latest = $outcome->decision;
		} else {
			$this->failed = $outcome;
		}
		return $outcome;
	}

	/**
	 * Like ask() as a probe with the account's explicit groups, but an answer is kept in the
	 * account's session for `$ttl` seconds and reused while the address, the account's groups
	 * and its edit count stay the same: for what MediaWiki asks on every page view
	 * (autopromotion). The trade-off: a change of the policy or of its lists reaches these
	 * answers up to `$ttl` seconds late (attempts are always asked afresh).
	 *
	 * @param \User|\MediaWiki\User\User $user A registered account
	 * @param string $action
	 * @param int $ttl Seconds; 0 keeps nothing
	 * @return Outcome
	 */
	public function askRemembered( $user, string $action, int $ttl ): Outcome {
		$request = $user->getRequest();
		if ( $ttl <= 0 || $this->secret === '' ) {
			return $this->ask( $user, $action, true, true );
		}
		// Keyed with the wiki's secret: the session holds no address, nor a hash of one that
		// could be reversed by trying every address.
		$key = hash_hmac( 'sha256', implode( "\n", [
			$this->wikiId, $action, $user->getId(), (string)$request->getIP(), $user->getEditCount(),
			implode( ',', $this->userGroupManager->getUserGroups( $user ) ),
		] ), $this->secret );
		$session = $request->getSession();
		$now = time();
		// [ key => [ until, answer ] ], the few latest; expired ones are dropped.
		$kept = array_filter( (array)$session->get( self::REMEMBERED, [] ), static function ( $entry ) use ( $now ) {
			return is_array( $entry ) && ( $entry[0] ?? 0 ) > $now && is_string( $entry[1] ?? null );
		} );
		if ( isset( $kept[$key] ) ) {
			try {
				return Outcome::decided( Decision::fromJson( $kept[$key][1] ) );
			} catch ( \UnexpectedValueException $e ) {
				// Not one of ours: asked afresh.
			}
		}
		$outcome = $this->ask( $user, $action, true, true );
		if ( $outcome->decision !== null ) {
			$kept[$key] = [ $now + $ttl, $outcome->decision->toJson() ];
			$session->set( self::REMEMBERED, array_slice( $kept, -self::REMEMBERED_MAX, null, true ) );
		}
		return $outcome;
	}

	/**
	 * What editgate says about an anonymous edit from `$ip`, for the admin tools (the block
	 * form, contributions, the API module, autoblocks): always a probe, never counted.
	 *
	 * @param string $ip A single address
	 * @return Outcome
	 */
	public function askAbout( string $ip ): Outcome {
		if ( isset( $this->addresses[$ip] ) ) {
			return Outcome::decided( $this->addresses[$ip] );
		}
		$outcome = $this->client->check( CheckPayload::build( [
			'ip' => $ip,
			'wiki' => $this->wikiId,
			'action' => 'edit',
			'kind' => CheckPayload::NAME_ANONYMOUS,
			'probe' => true,
		] ) );
		if ( $outcome->decision !== null ) {
			$this->addresses[$ip] = $outcome->decision;
		}
		return $outcome;
	}

	/**
	 * The kind of account `$user` is sent as: anonymous, temporary or registered.
	 *
	 * @param \User|\MediaWiki\User\User $user
	 * @return string One of CheckPayload's NAME_ constants
	 */
	public static function kindOf( $user ): string {
		return CheckPayload::kindOf( $user->isTemp(), $user->isRegistered() );
	}

	/**
	 * The latest answer about this request's own client, if editgate was asked: its tags and
	 * sources describe the client address, whichever action was asked about.
	 *
	 * @return Decision|null
	 */
	public function latest(): ?Decision {
		return $this->latest;
	}

	/**
	 * What editgate is told about the attempt.
	 *
	 * @param \User|\MediaWiki\User\User $user
	 * @param string $action
	 * @param \WebRequest|\MediaWiki\Request\WebRequest $request
	 * @param string $ip The client address, after MediaWiki's trusted-proxy rules
	 * @param bool $probe Nothing is being saved
	 * @param bool $explicitGroups See ask()
	 * @return array
	 */
	private function payload( $user, string $action, $request, string $ip, bool $probe, bool $explicitGroups ): array {
		$kind = self::kindOf( $user );
		$registered = $kind !== CheckPayload::NAME_ANONYMOUS;
		$xff = $request->getHeader( 'X-Forwarded-For' );
		$proxyLookup = $this->proxyLookup;
		if ( $explicitGroups ) {
			$groups = array_merge( [ '*' ], $registered ? [ 'user' ] : [], $this->userGroupManager->getUserGroups( $user ) );
			$rights = $this->groupPermissions->getGroupPermissions( $groups );
		} else {
			$groups = $this->userGroupManager->getUserEffectiveGroups( $user );
			$rights = $this->permissionManager->getUserPermissions( $user );
		}
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
			'groups' => $groups,
			'rights' => $rights,
			'editCount' => $registered ? $user->getEditCount() : 0,
			'registration' => $registered ? $user->getRegistration() : null,
			'emailConfirmed' => $registered && $user->isEmailConfirmed(),
			'requestId' => $request::getRequestId(),
			'probe' => $probe,
			'maxForwardedFor' => $this->maxForwardedFor,
		] );
	}
}
