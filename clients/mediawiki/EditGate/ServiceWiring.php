<?php
/**
 * The EditGate extension's services.
 *
 * @license Apache-2.0
 * @file
 */

use MediaWiki\Extension\EditGate\EditGateClient;
use MediaWiki\Extension\EditGate\Enforcer;
use MediaWiki\Extension\EditGate\Gate;
use MediaWiki\Extension\EditGate\StreamTransport;
use MediaWiki\Logger\LoggerFactory;
use MediaWiki\MediaWikiServices;

return [
	'EditGate.Gate' => static function ( MediaWikiServices $services ): Gate {
		$config = $services->getMainConfig();
		$logger = LoggerFactory::getInstance( 'EditGate' );
		return new Gate(
			$config,
			$services->getProxyLookup(),
			$services->getUserGroupManager(),
			$services->getPermissionManager(),
			$services->getGroupPermissionsLookup(),
			new EditGateClient(
				(string)$config->get( 'EditGateUrl' ),
				$config->get( 'EditGateTimeout' ),
				$logger,
				new StreamTransport(
					(string)$config->get( 'EditGateSocket' ),
					$config->get( 'EditGateCAFile' ),
					$config->get( 'EditGateClientCert' ),
					$config->get( 'EditGateClientKey' )
				)
			),
			$logger
		);
	},
	'EditGate.Enforcer' => static function ( MediaWikiServices $services ): Enforcer {
		return new Enforcer(
			$services->getService( 'EditGate.Gate' ),
			(bool)$services->getMainConfig()->get( 'EditGateFailOpen' ),
			LoggerFactory::getInstance( 'EditGate' )
		);
	},
];
