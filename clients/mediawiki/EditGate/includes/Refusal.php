<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

/**
 * The permission error shown for a refused action: what the editor reads on the page, in
 * their language and for who they are, and what an API client gets as a stable error code
 * with `data.editgate`.
 */
class Refusal {

	/** What a message key looks like; policy text has spaces. */
	private const KEY_PATTERN = '/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/';

	/** An appeal that can be shown as a link as it is. */
	private const URL_PATTERN = '/^https?:\/\/[^\s\[\]<>"{}|]+$/';

	/**
	 * An appeal that names a page of the wiki, `[[Project:Appeals]]`: shown as a link on the
	 * wiki the editor is on, with none of the characters that would make it more than a link.
	 */
	private const PAGE_PATTERN = '/^\[\[[^\[\]{}|<>#\n]+\]\]$/';

	/**
	 * Keys that wrap a refusal: each is also the API error code, and its text is `$1`, the
	 * reason with its links. They can never be the reason itself.
	 */
	private const WRAPPERS = [ 'editgate-require-login', 'editgate-blocked', 'editgate-unavailable', 'editgate-error' ];

	/** A web address in policy text, shown as a link (the characters wikitext gives no
	 * meaning to inside an external link's target, and no trailing punctuation). */
	private const TEXT_URL_PATTERN = '/https?:\/\/[A-Za-z0-9\-._~:\/?#@!$&()*+,;=%]*[A-Za-z0-9\-_~\/#=&%+]/';

	/**
	 * The error for a refusal.
	 *
	 * The body is the policy's `message` for who the editor is: the MediaWiki message
	 * `<message>-temporary` or `<message>-registered` when the editor has such an account and
	 * the wiki has that message, else `<message>`, else (a key with no message, a typo in the
	 * policy) editgate's default for the verdict and the account kind rather than a raw key;
	 * policy text (not a key) is escaped so that it shows as written. Then the appeal; for
	 * an anonymous or temporary-account editor asked to log in, links to log in or create an
	 * account and come back to the page (a registered account is already logged in, and is
	 * told instead that it does not qualify yet); and the reference to quote in an appeal.
	 *
	 * The outer message's key is the API error code, and everything else is its parameter.
	 * Some MediaWiki code paths (page moves in 1.39) flatten a permission error into a key
	 * and parameters, dropping the ApiMessage and with it `data.editgate`; the editor still
	 * reads the whole message then, and an API client still gets the right code.
	 *
	 * @param Decision $decision A refusal
	 * @param string $kind The account kind sent: anonymous, temporary or registered
	 * @param \Title|\MediaWiki\Title\Title|null $title The page acted on, for the links'
	 *   return
	 * @return \IApiMessage|\MediaWiki\Api\IApiMessage
	 */
	public static function fromDecision( Decision $decision, string $kind, $title ) {
		$parts = [ self::body( $decision->message, $decision->fallbackMessageKey( $kind ), $kind ) ];
		if ( $decision->appeal !== '' ) {
			$parts[] = self::message( 'editgate-appeal', [ self::appealLink( $decision->appeal ) ] );
		}
		if ( $decision->verdict === Decision::REQUIRE_LOGIN && $kind !== CheckPayload::NAME_REGISTERED ) {
			$returnTo = $title ? $title->getPrefixedDBkey() : 'Special:UserLogin';
			$hint = $kind === CheckPayload::NAME_TEMPORARY ? 'editgate-login-hint-temporary' : 'editgate-login-hint';
			$parts[] = self::message( $hint, [ wfUrlencode( $returnTo ) ] );
		}
		$parts[] = self::message( 'editgate-reference', [
			$decision->requestId !== '' ? $decision->requestId : '–',
			$decision->ruleId !== '' ? $decision->ruleId : 'default',
			$decision->time,
		] );
		// The parts joined as paragraphs: `$1\n\n$2...`, one placeholder per part.
		$layout = implode( "\n\n", array_map(
			static function ( int $i ): string {
				return '$' . ( $i + 1 );
			},
			array_keys( $parts )
		) );
		$raw = Compat::className( 'MediaWiki\Language\RawMessage', 'RawMessage' );
		return self::apiMessage(
			self::message( $decision->apiCode(), [ new $raw( $layout, $parts ) ] ),
			$decision->apiCode(),
			[ 'editgate' => $decision->toApiData() ]
		);
	}

	/**
	 * The error when editgate could not be reached or answer in time and the wiki fails
	 * closed.
	 *
	 * @return \IApiMessage|\MediaWiki\Api\IApiMessage
	 */
	public static function unavailable() {
		return self::apiMessage( 'editgate-unavailable', 'editgate-unavailable' );
	}

	/**
	 * The error when editgate's answer could not be used (a misconfiguration or a bug, never
	 * an outage): refused whatever $wgEditGateFailOpen says.
	 *
	 * @return \IApiMessage|\MediaWiki\Api\IApiMessage
	 */
	public static function error() {
		return self::apiMessage( 'editgate-error', 'editgate-error' );
	}

	/**
	 * The appeal as wikitext: a web address as it is (a link), a page of the wiki
	 * (`[[Project:Appeals]]`) as a link labelled with the page's name on this wiki, anything
	 * else escaped so that it shows as written.
	 *
	 * @param string $appeal
	 * @return string
	 */
	private static function appealLink( string $appeal ): string {
		if ( preg_match( self::URL_PATTERN, $appeal ) ) {
			return $appeal;
		}
		if ( preg_match( self::PAGE_PATTERN, $appeal ) ) {
			$class = Compat::className( 'MediaWiki\Title\Title', 'Title' );
			$title = $class::newFromText( substr( $appeal, 2, -2 ) );
			if ( $title !== null ) {
				return '[[:' . $title->getPrefixedText() . '|' . wfEscapeWikiText( $title->getPrefixedText() ) . ']]';
			}
		}
		return wfEscapeWikiText( $appeal );
	}

	/**
	 * @param string $key
	 * @param array $params
	 * @return \Message|\MediaWiki\Message\Message
	 */
	private static function message( string $key, array $params = [] ) {
		$class = Compat::className( 'MediaWiki\Message\Message', 'Message' );
		return new $class( $key, $params );
	}

	/**
	 * @param \Message|\MediaWiki\Message\Message|string $msg
	 * @param string $code
	 * @param array|null $data
	 * @return \IApiMessage|\MediaWiki\Api\IApiMessage
	 */
	private static function apiMessage( $msg, string $code, ?array $data = null ) {
		$class = Compat::className( 'MediaWiki\Api\ApiMessage', 'ApiMessage' );
		return $class::create( $msg, $code, $data );
	}

	/**
	 * @param string $message The policy's message: a key, text, or ''
	 * @param string $fallbackKey editgate's default message for the verdict and account kind
	 * @param string $kind The account kind: anonymous, temporary or registered
	 * @return \Message|\MediaWiki\Message\Message|string A message, or escaped wikitext
	 */
	private static function body( string $message, string $fallbackKey, string $kind ) {
		if ( $message === '' || in_array( $message, self::WRAPPERS, true ) ) {
			return self::message( $fallbackKey );
		}
		if ( !preg_match( self::KEY_PATTERN, $message ) ) {
			return self::escapeKeepingLinks( $message );
		}
		if ( $kind !== CheckPayload::NAME_ANONYMOUS ) {
			$forKind = self::message( "$message-$kind" );
			if ( $forKind->exists() ) {
				return $forKind;
			}
		}
		$msg = self::message( $message );
		return $msg->exists() ? $msg : self::message( $fallbackKey );
	}

	/**
	 * Policy text as wikitext that shows as written, its web addresses as links. Everything
	 * but the addresses goes through wfEscapeWikiText (which also turns `://` into
	 * `&#58;//`, so an address left in it would be dead text); each address becomes an
	 * external link whose target holds none of the characters wikitext reads inside one, and
	 * whose label is escaped.
	 *
	 * @param string $text
	 * @return string
	 */
	public static function escapeKeepingLinks( string $text ): string {
		$out = '';
		$at = 0;
		if ( preg_match_all( self::TEXT_URL_PATTERN, $text, $m, PREG_OFFSET_CAPTURE ) ) {
			foreach ( $m[0] as [ $url, $offset ] ) {
				$out .= wfEscapeWikiText( substr( $text, $at, $offset - $at ) );
				$out .= '[' . $url . ' ' . wfEscapeWikiText( $url ) . ']';
				$at = $offset + strlen( $url );
			}
		}
		return $out . wfEscapeWikiText( substr( $text, $at ) );
	}
}
