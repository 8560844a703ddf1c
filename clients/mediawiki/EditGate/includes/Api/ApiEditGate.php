<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate\Api;

use MediaWiki\Extension\EditGate\Gate;
use Wikimedia\ParamValidator\ParamValidator;

// ApiBase moved under MediaWiki\Api in 1.43; the old name is deprecated there.
if ( !class_exists( 'MediaWiki\Api\ApiBase' ) ) {
	class_alias( 'ApiBase', 'MediaWiki\Api\ApiBase' );
}

/**
 * `action=editgate&ip=…`: what editgate knows about an address, for tools (as TorBlock's
 * `action=torblock`): the sources that hold it, their change tags, whether it is shared, and
 * what an anonymous edit from it gets. Needs the `editgate-view` right (sysops by default):
 * list membership is not everyone's to probe.
 */
class ApiEditGate extends \MediaWiki\Api\ApiBase {

	/** @var Gate */
	private $gate;

	/**
	 * @param \ApiMain|\MediaWiki\Api\ApiMain $main
	 * @param string $action
	 * @param Gate $gate
	 */
	public function __construct( $main, string $action, Gate $gate ) {
		parent::__construct( $main, $action );
		$this->gate = $gate;
	}

	public function execute() {
		$this->checkUserRightsAny( 'editgate-view' );
		$ip = trim( (string)$this->getParameter( 'ip' ) );
		if ( filter_var( $ip, FILTER_VALIDATE_IP ) === false ) {
			$this->dieWithError( [ 'apierror-badip', wfEscapeWikiText( $ip ) ], 'badip' );
		}
		$outcome = $this->gate->askAbout( $ip );
		if ( $outcome->decision === null ) {
			$this->dieWithError( 'editgate-unavailable', 'editgate-unavailable' );
		}
		$d = $outcome->decision;
		$result = $this->getResult();
		$result->addValue( null, 'editgate', [
			'ip' => $ip,
			'sources' => $d->sources,
			'tags' => $d->tags,
			'shared' => $d->sharedAddress,
			'verdict' => $d->verdict,
			'ruleId' => $d->ruleId,
			'reason' => $d->reason,
			'policyVersion' => $d->policyVersion,
		] );
		$result->addIndexedTagName( [ 'editgate', 'sources' ], 'source' );
		$result->addIndexedTagName( [ 'editgate', 'tags' ], 'tag' );
	}

	/** @inheritDoc */
	public function getAllowedParams() {
		return [
			'ip' => [
				ParamValidator::PARAM_TYPE => 'string',
				ParamValidator::PARAM_REQUIRED => true,
			],
		];
	}

	/** @inheritDoc */
	protected function getExamplesMessages() {
		return [
			'action=editgate&ip=162.247.74.201' => 'apihelp-editgate-example-1',
		];
	}
}
