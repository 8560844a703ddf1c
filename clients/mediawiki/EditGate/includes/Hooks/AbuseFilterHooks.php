<?php
/**
 * @license Apache-2.0
 * @file
 */

// phpcs:disable MediaWiki.NamingConventions.LowerCamelFunctionsName.FunctionName
// AbuseFilter's hook names have hyphens: onAbuseFilter_builder and the like.

namespace MediaWiki\Extension\EditGate\Hooks;

use MediaWiki\Extension\EditGate\Compat;
use MediaWiki\Extension\EditGate\Gate;

/**
 * What editgate knew, for AbuseFilter's filters: `editgate_sources` (the sources holding the
 * client address), `editgate_tags`, `editgate_verdict` and `editgate_rule` (of the action
 * being filtered, or of the latest check in the request), and, for filters written for
 * TorBlock, `tor_exit_node` (true when a source listed in $wgEditGateTorSources holds the
 * address), defined only when TorBlock is not loaded, which then defines it itself.
 *
 * Lazy: nothing is computed unless a filter reads a variable, and then from the answer the
 * permission check of the same request already has; only when AbuseFilter filters an action
 * editgate was not asked about is editgate asked, once.
 *
 * Registered only as AbuseFilter's hooks, so this class is loaded only when AbuseFilter is.
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

	/** @var Gate */
	private $gate;
	/** @var string[] */
	private $torSources;
	/** @var bool */
	private $torBlockLoaded;

	/**
	 * @param \Config|\MediaWiki\Config\Config $config
	 * @param Gate $gate
	 */
	public function __construct( $config, Gate $gate ) {
		$this->gate = $gate;
		$this->torSources = (array)$config->get( 'EditGateTorSources' );
		$this->torBlockLoaded = Compat::extensionLoaded( 'TorBlock' );
	}

	/**
	 * @param array &$realValues
	 * @return bool
	 */
	public function onAbuseFilter_builder( array &$realValues ) {
		foreach ( self::VARIABLES as $name => $suffix ) {
			$realValues['vars'][$name] = $suffix;
		}
		if ( !$this->torBlockLoaded ) {
			$realValues['vars']['tor_exit_node'] = 'tor-exit-node';
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
		$names = array_keys( self::VARIABLES );
		if ( !$this->torBlockLoaded ) {
			$names[] = 'tor_exit_node';
		}
		foreach ( $names as $name ) {
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
		$answer = $this->gate->latest();
		if ( $answer === null ) {
			// AbuseFilter filters an action editgate was not asked about (a deletion, say).
			$answer = $this->gate->ask( $parameters['user'], 'edit' )->decision;
		}
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
}
