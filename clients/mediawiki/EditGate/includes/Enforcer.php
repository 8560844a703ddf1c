<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

use Psr\Log\LoggerInterface;

/**
 * What the wiki does with editgate's answer (the service `EditGate.Enforcer`): the refusal to
 * show for a refused action, and what an editgate that cannot answer means, decided once
 * from `$wgEditGateFailOpen`. Every hook that refuses something asks here.
 */
class Enforcer {

	/** @var Gate */
	private $gate;
	/** @var bool */
	private $failOpen;
	/** @var LoggerInterface */
	private $logger;

	/**
	 * @param Gate $gate
	 * @param bool $failOpen $wgEditGateFailOpen
	 * @param LoggerInterface $logger The EditGate channel
	 */
	public function __construct( Gate $gate, bool $failOpen, LoggerInterface $logger ) {
		$this->gate = $gate;
		$this->failOpen = $failOpen;
		$this->logger = $logger;
	}

	/**
	 * The refusal of `$user` doing `$action` from this request's address, or null when it
	 * goes through.
	 *
	 * When editgate cannot be reached, does not answer in time or fails (5xx), follows
	 * $wgEditGateFailOpen; when it answers something that cannot be used (a 4xx, a redirect,
	 * a page that is not editgate's), refuses. Each refusal is logged with the reference the
	 * editor is shown (never the address).
	 *
	 * @param \User|\MediaWiki\User\User $user
	 * @param string $action
	 * @param \Title|\MediaWiki\Title\Title|null $title The page acted on, if any
	 * @return \IApiMessage|\MediaWiki\Api\IApiMessage|null
	 */
	public function refusal( $user, string $action, $title = null ) {
		$outcome = $this->gate->ask( $user, $action );
		$decision = $outcome->decision;
		if ( $decision !== null ) {
			if ( $decision->allows() ) {
				return null;
			}
			$kind = Gate::kindOf( $user );
			$this->logger->info( 'editgate refused {action} by {account}: {verdict} ({rule}); reference {reference}', [
				'action' => $action,
				'account' => $kind,
				'verdict' => $decision->verdict,
				'rule' => $decision->ruleId === '' ? 'default' : $decision->ruleId,
				'reference' => $decision->reference(),
				'request_id' => $decision->requestId,
			] );
			return Refusal::fromDecision( $decision, $kind, $title );
		}
		if ( $outcome->kind === Outcome::FAULT ) {
			$this->logger->error( 'editgate gave no usable answer for {action}: refused', [ 'action' => $action ] );
			return Refusal::error();
		}
		if ( $this->failOpen ) {
			$this->logger->warning( 'editgate could not decide {action}; failing open: allowed', [ 'action' => $action ] );
			return null;
		}
		$this->logger->warning( 'editgate could not decide {action}; failing closed: refused', [ 'action' => $action ] );
		return Refusal::unavailable();
	}
}
