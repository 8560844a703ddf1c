<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate\Hooks;

use MediaWiki\Block\Hook\AbortAutoblockHook;
use MediaWiki\Extension\EditGate\Compat;
use MediaWiki\Extension\EditGate\Gate;

/**
 * For admins: no autoblocks on shared addresses, and what editgate knows about an address on
 * the pages where they judge it.
 *
 * OtherBlockLogLink and SpecialContributionsBeforeMainOutput are handled without implementing
 * their interfaces: those in MediaWiki\Hook move namespace from MediaWiki 1.46, and a class
 * implementing an interface one supported release lacks does not load there. MediaWiki calls
 * a handler's on<Hook> method by name whatever it implements.
 */
class BlockHooks implements AbortAutoblockHook {

	/** @var Gate */
	private $gate;

	/**
	 * @param Gate $gate
	 */
	public function __construct( Gate $gate ) {
		$this->gate = $gate;
	}

	/**
	 * An autoblock on a Tor exit or a VPN egress blocks everyone behind it: none is placed on
	 * an address the policy marks `shared`. When editgate cannot answer, the autoblock is
	 * placed (as without this extension).
	 *
	 * @param string $autoblockip
	 * @param \MediaWiki\Block\DatabaseBlock $block
	 * @return bool
	 */
	public function onAbortAutoblock( $autoblockip, $block ) {
		if ( filter_var( $autoblockip, FILTER_VALIDATE_IP ) === false ) {
			return true;
		}
		$decision = $this->gate->askAbout( $autoblockip )->decision;
		if ( $decision !== null && $decision->sharedAddress ) {
			$this->gate->logger()->info( 'no autoblock on a shared address (sources: {sources})', [
				'sources' => implode( ', ', $decision->sources ),
			] );
			return false;
		}
		return true;
	}

	/**
	 * On Special:Block and the contributions of an address: the sources that hold it and the
	 * rule that decides an anonymous edit from it. Nothing, and no call, for an account or a
	 * range.
	 *
	 * @param array &$msg
	 * @param string $ip
	 * @return bool
	 */
	public function onOtherBlockLogLink( &$msg, $ip ) {
		if ( filter_var( $ip, FILTER_VALIDATE_IP ) === false ) {
			return true;
		}
		$decision = $this->gate->askAbout( $ip )->decision;
		if ( $decision === null ) {
			return true;
		}
		$sources = $decision->sources ? implode( ', ', $decision->sources ) : '–';
		$rule = $decision->ruleId !== '' ? $decision->ruleId : '–';
		$class = Compat::className( 'MediaWiki\Html\Html', 'Html' );
		$msg[] = $class::rawElement(
			'span',
			[ 'class' => 'mw-editgate-address' ],
			wfMessage( 'editgate-address-info' )
				->plaintextParams( $ip, $sources, $decision->verdict, $rule )
				->numParams( count( $decision->sources ) )
				->parse()
		);
		return true;
	}

	/**
	 * The contributions of an address: the same line as on Special:Block.
	 *
	 * @param int $id
	 * @param \User|\MediaWiki\User\User $user
	 * @param \SpecialPage $sp
	 * @return bool
	 */
	public function onSpecialContributionsBeforeMainOutput( $id, $user, $sp ) {
		$lines = [];
		$this->onOtherBlockLogLink( $lines, $user->getName() );
		foreach ( $lines as $line ) {
			$sp->getOutput()->addHTML( $line );
		}
		return true;
	}
}
