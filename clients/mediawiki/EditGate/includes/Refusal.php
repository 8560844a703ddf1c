<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

use ApiMessage;
use IApiMessage;
use Message;
use RawMessage;
use Title;

/**
 * The permission error shown for a refused action: what the editor reads on the page and
 * what an API client gets as a stable error code with `data.editgate`.
 */
class Refusal {

	/** What a message key looks like; policy text has spaces. */
	private const KEY_PATTERN = '/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/';

	/** An appeal that can be shown as a link as it is. */
	private const URL_PATTERN = '/^https?:\/\/[^\s\[\]<>"{}|]+$/';

	/**
	 * Keys that wrap a refusal: each is also the API error code, and its text is `$1`, the
	 * reason with its links. They can never be the reason itself.
	 */
	private const WRAPPERS = [ 'editgate-require-login', 'editgate-blocked', 'editgate-unavailable' ];

	/**
	 * The error for a refusal.
	 *
	 * The body is the policy's `message`: the MediaWiki message of that name when one exists,
	 * else the policy's text, escaped so that it shows as written. A key-like message with no
	 * MediaWiki message (a typo in the policy) shows editgate's default for the verdict
	 * rather than a raw key. Then the appeal path, and for logged-out editors asked to log
	 * in, a login link back to the page.
	 *
	 * The outer message's key is the API error code, and everything else is its parameter.
	 * Some MediaWiki code paths (page moves in 1.39) flatten a permission error into a key
	 * and parameters, dropping the ApiMessage and with it `data.editgate`; the editor still
	 * reads the whole message then, and an API client still gets the right code.
	 *
	 * @param Decision $decision A refusal
	 * @param bool $loggedOut Anonymous or temporary account
	 * @param Title|null $title The page acted on, for the login link's return
	 * @return IApiMessage
	 */
	public static function fromDecision( Decision $decision, bool $loggedOut, ?Title $title ): IApiMessage {
		$parts = [ self::body( $decision->message, $decision->fallbackMessageKey() ) ];
		if ( $decision->appeal !== '' ) {
			$appeal = preg_match( self::URL_PATTERN, $decision->appeal )
				? $decision->appeal
				: wfEscapeWikiText( $decision->appeal );
			$parts[] = new Message( 'editgate-appeal', [ $appeal ] );
		}
		if ( $loggedOut && $decision->verdict === Decision::REQUIRE_LOGIN ) {
			$returnTo = $title ? $title->getPrefixedDBkey() : 'Special:UserLogin';
			$parts[] = new Message( 'editgate-login-hint', [ wfUrlencode( $returnTo ) ] );
		}
		// The parts joined as paragraphs: `$1\n\n$2...`, one placeholder per part.
		$layout = implode( "\n\n", array_map(
			static function ( int $i ): string {
				return '$' . ( $i + 1 );
			},
			array_keys( $parts )
		) );
		return ApiMessage::create(
			new Message( $decision->apiCode(), [ new RawMessage( $layout, $parts ) ] ),
			$decision->apiCode(),
			[ 'editgate' => $decision->toApiData() ]
		);
	}

	/**
	 * The error when editgate could not decide and the wiki fails closed.
	 *
	 * @return IApiMessage
	 */
	public static function unavailable(): IApiMessage {
		return ApiMessage::create( 'editgate-unavailable', 'editgate-unavailable' );
	}

	/**
	 * @param string $message The policy's message: a key, text, or ''
	 * @param string $fallbackKey editgate's default message for the verdict
	 * @return Message|string A message, or escaped wikitext
	 */
	private static function body( string $message, string $fallbackKey ) {
		if ( $message === '' || in_array( $message, self::WRAPPERS, true ) ) {
			return new Message( $fallbackKey );
		}
		if ( preg_match( self::KEY_PATTERN, $message ) ) {
			$msg = new Message( $message );
			return $msg->exists() ? $msg : new Message( $fallbackKey );
		}
		return wfEscapeWikiText( $message );
	}
}
