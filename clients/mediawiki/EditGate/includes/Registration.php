<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

use MediaWiki\Extension\EditGate\Hooks\AbuseFilterHooks;
use MediaWiki\Extension\EditGate\Hooks\UserHooks;

/**
 * extension.json's callback, run once every extension is registered (so whether TorBlock or
 * IPReputation is loaded is known): what each concern must set up before any hook runs.
 */
class Registration {

	public static function onRegistration(): void {
		UserHooks::defineTorCondition();
		AbuseFilterHooks::protectVariables();
	}
}
