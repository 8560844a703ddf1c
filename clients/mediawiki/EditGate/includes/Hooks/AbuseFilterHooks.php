<?php
/**
 * @license Apache-2.0
 * @file
 */

// phpcs:disable MediaWiki.NamingConventions.LowerCamelFunctionsName.FunctionName
// AbuseFilter's hook names have hyphens: onAbuseFilter_builder and the like.

namespace MediaWiki\Extension\EditGate\Hooks;

use MediaWiki\Extension\EditGate\CheckPayload;
use MediaWiki\Extension\EditGate\Compat;
use MediaWiki\Extension\EditGate\Decision;
use MediaWiki\Extension\EditGate\Gate;

/**
 * What editgate knew, for AbuseFilter's filters: `editgate_sources` (the sources holding the
 * client address), `editgate_tags`, `editgate_verdict` and `editgate_rule` (of the action
 * being filtered, or of the latest check in the request), and, for filters written for
 * TorBlock, `tor_exit_node` (true when a source listed in $wgEditGateTorSources holds the
 * address), defined only when TorBlock is not loaded, which then defines it itself.
 *
 * And IPReputation's variables (`ip_reputation_tunnel_operators`, `…_risk_types`,
 * `…_client_proxies`, `…_client_behaviors`, `…_client_count`, `…_ipoid_known`), from the
 * reputation in editgate's answer (Spur's feeds), so that filters written for IPReputation
 * keep working without it: as IPReputation fills them, for anonymous editors and temporary
 * accounts only (null for others, and null but `…_ipoid_known` false for an address no feed
 * holds), and protected where AbuseFilter has protected variables (1.43 and later). Defined
 * only when IPReputation is not loaded, which then defines them itself.
 *
 * Lazy: nothing is computed unless a filter reads a variable, and then from the answer the
 * permission check of the same request already has; only when AbuseFilter filters an action
 * editgate was not asked about is editgate asked, once.
 *
 * Its hooks are AbuseFilter's, which run only when AbuseFilter is loaded.
 */
class AbuseFilterHooks {

	/**
	 * The variables, with their builder descriptions: the message
	 * `abusefilter-edit-builder-vars-<suffix>`.
	 */
	public const VARIABLES = [
		'editgate_sources' => 'editgate-sources',
		'editgate_tags' => 'editgate-tags',
		'editgate_verdict' => 'editgate-verdict',
		'editgate_rule' => 'editgate-rule',
	];

	/**
	 * IPReputation's variables, with their builder descriptions (IPReputation's messages,
	 * which this extension ships too).
	 */
	public const IP_REPUTATION_VARIABLES = [
		'ip_reputation_tunnel_operators' => 'ip-reputation-tunnel-operators',
		'ip_reputation_risk_types' => 'ip-reputation-risk-types',
		'ip_reputation_client_proxies' => 'ip-reputation-client-proxies',
		'ip_reputation_client_behaviors' => 'ip-reputation-client-behaviors',
		'ip_reputation_client_count' => 'ip-reputation-client-count',
		'ip_reputation_ipoid_known' => 'ip-reputation-ipoid-known',
	];

	/** @var Gate */
	private $gate;
	/** @var string[] */
	private $torSources;
	/** @var bool */
	private $torBlockLoaded;
	/** @var bool */
	private $ipReputationLoaded;

	/**
	 * @param \Config|\MediaWiki\Config\Config $config
	 * @param Gate $gate
	 */
	public function __construct( $config, Gate $gate ) {
		$this->gate = $gate;
		$this->torSources = (array)$config->get( 'EditGateTorSources' );
		$this->torBlockLoaded = Compat::extensionLoaded( 'TorBlock' );
		$this->ipReputationLoaded = Compat::extensionLoaded( 'IPReputation' );
	}

	/**
	 * From the registration callback: IPReputation's variables are protected on AbuseFilter
	 * 1.43, which has only the setting (1.44 and later also ask the hook below).
	 */
	public static function protectVariables(): void {
		// AbuseFilter registers itself as "Abuse Filter".
		if ( !Compat::extensionLoaded( 'Abuse Filter' ) || Compat::extensionLoaded( 'IPReputation' ) ) {
			return;
		}
		$protected = $GLOBALS['wgAbuseFilterProtectedVariables'] ?? null;
		if ( is_array( $protected ) ) {
			$GLOBALS['wgAbuseFilterProtectedVariables'] = array_values( array_unique(
				array_merge( $protected, array_keys( self::IP_REPUTATION_VARIABLES ) )
			) );
		}
	}

	/**
	 * AbuseFilter 1.44 and later: IPReputation's variables hold non-public data.
	 *
	 * @param string[] &$variables
	 * @return bool
	 */
	public function onAbuseFilterCustomProtectedVariables( array &$variables ) {
		if ( !$this->ipReputationLoaded ) {
			$variables = array_merge( $variables, array_keys( self::IP_REPUTATION_VARIABLES ) );
		}
		return true;
	}

	/**
	 * The variables this extension defines here.
	 *
	 * @return string[] Variable => the suffix of its builder message
	 */
	private function variables(): array {
		$vars = self::VARIABLES;
		if ( !$this->torBlockLoaded ) {
			$vars['tor_exit_node'] = 'tor-exit-node';
		}
		if ( !$this->ipReputationLoaded ) {
			$vars += self::IP_REPUTATION_VARIABLES;
		}
		return $vars;
	}

	/**
	 * @param array &$realValues
	 * @return bool
	 */
	public function onAbuseFilter_builder( array &$realValues ) {
		foreach ( $this->variables() as $name => $suffix ) {
			$realValues['vars'][$name] = $suffix;
		}
		return true;
	}

	/**
	 * @param \MediaWiki\Extension\AbuseFilter\Variables\VariableHolder $vars
	 * @param \User|\MediaWiki\User\User $user
	 * @param \RecentChange|null $rc Set when the variables are for a past change: editgate
	 *   knows nothing about it, and nothing is set
	 * @return bool
	 */
	public function onAbuseFilter_generateUserVars( $vars, $user, $rc ) {
		if ( $rc !== null ) {
			return true;
		}
		foreach ( array_keys( $this->variables() ) as $name ) {
			$vars->setLazyLoadVar( $name, 'editgate-' . $name, [ 'user' => $user ] );
		}
		return true;
	}

	/**
	 * @param string $method
	 * @param \MediaWiki\Extension\AbuseFilter\Variables\VariableHolder $vars
	 * @param array $parameters
	 * @param mixed &$result
	 * @return bool false when the variable is ours and computed
	 */
	public function onAbuseFilter_computeVariable( $method, $vars, $parameters, &$result ) {
		if ( strpos( $method, 'editgate-' ) !== 0 ) {
			return true;
		}
		$name = substr( $method, strlen( 'editgate-' ) );
		if ( isset( self::IP_REPUTATION_VARIABLES[$name] ) ) {
			$result = $this->ipReputation( $name, $parameters['user'] );
			return false;
		}
		$answer = $this->answer( $parameters['user'] );
		switch ( $name ) {
			case 'editgate_sources':
				$result = $answer ? $answer->sources : [];
				break;
			case 'editgate_tags':
				$result = $answer ? $answer->tags : [];
				break;
			case 'editgate_verdict':
				$result = $answer ? $answer->verdict : '';
				break;
			case 'editgate_rule':
				$result = $answer ? $answer->ruleId : '';
				break;
			case 'tor_exit_node':
				$result = $answer !== null && (bool)array_intersect( $answer->sources, $this->torSources );
				break;
			default:
				return true;
		}
		return false;
	}

	/**
	 * editgate's answer for this request: the one the permission check got, or, when
	 * AbuseFilter filters an action editgate was not asked about (a deletion, say), one asked
	 * now as for an edit.
	 *
	 * @param \User|\MediaWiki\User\User $user
	 * @return Decision|null
	 */
	private function answer( $user ): ?Decision {
		return $this->gate->latest() ?? $this->gate->ask( $user, 'edit' )->decision;
	}

	/**
	 * One of IPReputation's variables, as IPReputation computes it from ipoid's data.
	 *
	 * @param string $name
	 * @param \User|\MediaWiki\User\User $user
	 * @return string[]|int|bool|null
	 */
	private function ipReputation( string $name, $user ) {
		if ( Gate::kindOf( $user ) === CheckPayload::NAME_REGISTERED ) {
			return null;
		}
		$answer = $this->answer( $user );
		$reputation = $answer ? $answer->reputation : null;
		if ( $name === 'ip_reputation_ipoid_known' ) {
			return $reputation !== null;
		}
		if ( $reputation === null ) {
			return null;
		}
		switch ( $name ) {
			case 'ip_reputation_tunnel_operators':
				return $reputation->tunnelOperators;
			case 'ip_reputation_risk_types':
				return $reputation->risks;
			case 'ip_reputation_client_proxies':
				return $reputation->clientProxies;
			case 'ip_reputation_client_behaviors':
				return $reputation->clientBehaviors;
			default:
				return $reputation->clientCount;
		}
	}
}
