<?php
/**
 * @license Apache-2.0
 * @file
 */

namespace MediaWiki\Extension\EditGate;

use UnexpectedValueException;

/**
 * editgate's answer for one attempt, read from a `CheckResponse` in proto3 JSON.
 *
 * Pure PHP with no MediaWiki dependency (unit-tested in tests/phpunit/unit).
 */
class Decision {

	public const ALLOW = 'allow';
	public const REQUIRE_LOGIN = 'require-login';
	public const BLOCK = 'block';

	/** Wire enum name => verdict. */
	private const VERDICTS = [
		'VERDICT_ALLOW' => self::ALLOW,
		'VERDICT_REQUIRE_LOGIN' => self::REQUIRE_LOGIN,
		'VERDICT_BLOCK' => self::BLOCK,
	];

	/** @var string One of the verdict constants */
	public $verdict;
	/** @var string The deciding rule; '' when a default decided */
	public $ruleId;
	/** @var string Why, in words (the rule's description) */
	public $reason;
	/** @var string A message key, or text to show */
	public $message;
	/** @var string Where to appeal a refusal; '' when none */
	public $appeal;
	/** @var string Hash of the policy that decided */
	public $policyVersion;
	/** @var string The request id sent, echoed */
	public $requestId;
	/** @var string[] Change tags of the sources holding the client address */
	public $tags = [];
	/** @var string[] The sources holding the client address */
	public $sources = [];
	/** @var bool One of them is shared (no autoblocks) */
	public $sharedAddress = false;
	/** @var Reputation|null What Spur's feeds say about the client address; null: nothing */
	public $reputation = null;
	/**
	 * @var string When the wiki's request began, UTC (`2026-12-06T10:15:02Z`): with the request
	 *   id and the rule, the reference an editor quotes in an appeal
	 */
	public $time = '';

	/**
	 * @param string $verdict
	 * @param string $ruleId
	 * @param string $reason
	 * @param string $message
	 * @param string $appeal
	 * @param string $policyVersion
	 * @param string $requestId
	 */
	public function __construct(
		string $verdict, string $ruleId, string $reason, string $message,
		string $appeal, string $policyVersion, string $requestId
	) {
		$this->verdict = $verdict;
		$this->ruleId = $ruleId;
		$this->reason = $reason;
		$this->message = $message;
		$this->appeal = $appeal;
		$this->policyVersion = $policyVersion;
		$this->requestId = $requestId;
	}

	/**
	 * Reads a `CheckResponse`.
	 *
	 * @param string $body The response body
	 * @return self
	 * @throws UnexpectedValueException When the body is not a CheckResponse: editgate's
	 *   answer must never be guessed at, so the caller refuses (a fault, not an outage).
	 */
	public static function fromJson( string $body ): self {
		$json = json_decode( $body, true );
		if ( !is_array( $json ) ) {
			throw new UnexpectedValueException( 'editgate answered something that is not a JSON object' );
		}
		$wire = $json['verdict'] ?? null;
		// Only a string can name a verdict: an array or a number here is no answer (and as an
		// array key it would throw a TypeError).
		$verdict = is_string( $wire ) ? ( self::VERDICTS[$wire] ?? null ) : null;
		if ( $verdict === null ) {
			throw new UnexpectedValueException(
				'editgate answered an unknown verdict: ' . substr( var_export( $json['verdict'] ?? null, true ), 0, 64 )
			);
		}
		$text = static function ( string $field ) use ( $json ): string {
			$v = $json[$field] ?? '';
			return is_string( $v ) ? $v : '';
		};
		$decision = new self(
			$verdict,
			$text( 'ruleId' ),
			$text( 'reason' ),
			$text( 'message' ),
			$text( 'appeal' ),
			$text( 'policyVersion' ),
			$text( 'requestId' )
		);
		$decision->tags = self::strings( $json, 'tags' );
		$decision->sources = self::strings( $json, 'sources' );
		$shared = $json['sharedAddress'] ?? false;
		if ( !is_bool( $shared ) ) {
			throw new UnexpectedValueException( 'editgate answered a sharedAddress that is not a boolean' );
		}
		$decision->sharedAddress = $shared;
		if ( isset( $json['reputation'] ) ) {
			$decision->reputation = Reputation::fromArray( $json['reputation'] );
		}
		return $decision;
	}

	/**
	 * A list of strings of the answer (absent: none, as from an editgate before it had them).
	 *
	 * @param array $json
	 * @param string $field
	 * @param string|null $path The field's name in an error (default: `$field`)
	 * @return string[]
	 * @throws UnexpectedValueException When it is anything else
	 */
	public static function strings( array $json, string $field, ?string $path = null ): array {
		$v = $json[$field] ?? [];
		if ( !is_array( $v ) || array_filter( $v, static function ( $x ) {
			return !is_string( $x );
		} ) ) {
			$path = $path ?? $field;
			throw new UnexpectedValueException( "editgate answered a $path that is not a list of strings" );
		}
		return array_values( $v );
	}

	/**
	 * The answer as editgate sent it (a `CheckResponse` in proto3 JSON), for fromJson() to
	 * read again: how an answer is kept between requests.
	 *
	 * @return string
	 */
	public function toJson(): string {
		$json = [
			'verdict' => array_search( $this->verdict, self::VERDICTS, true ),
			'ruleId' => $this->ruleId,
			'reason' => $this->reason,
			'message' => $this->message,
			'appeal' => $this->appeal,
			'policyVersion' => $this->policyVersion,
			'requestId' => $this->requestId,
			'tags' => $this->tags,
			'sources' => $this->sources,
			'sharedAddress' => $this->sharedAddress,
		];
		if ( $this->reputation !== null ) {
			$json['reputation'] = $this->reputation->toArray();
		}
		return (string)json_encode( $json, JSON_INVALID_UTF8_SUBSTITUTE | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE );
	}

	/**
	 * @return bool Whether the action goes through
	 */
	public function allows(): bool {
		return $this->verdict === self::ALLOW;
	}

	/**
	 * The API error code for a refusal.
	 *
	 * @return string editgate-require-login or editgate-blocked
	 */
	public function apiCode(): string {
		return $this->verdict === self::REQUIRE_LOGIN ? 'editgate-require-login' : 'editgate-blocked';
	}

	/**
	 * The machine-readable details of a refusal, as `data.editgate` in API errors.
	 *
	 * @return array
	 */
	public function toApiData(): array {
		return [
			'verdict' => $this->verdict,
			'ruleId' => $this->ruleId,
			'reason' => $this->reason,
			'message' => $this->message,
			'appeal' => $this->appeal,
			'policyVersion' => $this->policyVersion,
			'requestId' => $this->requestId,
			'time' => $this->time,
		];
	}

	/**
	 * The reference an editor quotes in an appeal, as the log channel writes it: the request
	 * id, the deciding rule (`default` for a default) and the time.
	 *
	 * @return string
	 */
	public function reference(): string {
		return implode( ' ', [
			$this->requestId !== '' ? $this->requestId : '–',
			$this->ruleId !== '' ? $this->ruleId : 'default',
			$this->time,
		] );
	}

	/**
	 * The message to show as the reason when the policy names none, for the account kind:
	 * what `require-login` asks of an anonymous editor (log in or create an account), of a
	 * temporary account (create one), and of a registered one (it does not qualify yet).
	 *
	 * @param string $kind anonymous, temporary or registered
	 * @return string
	 */
	public function fallbackMessageKey( string $kind = CheckPayload::NAME_ANONYMOUS ): string {
		if ( $this->verdict !== self::REQUIRE_LOGIN ) {
			return 'editgate-block';
		}
		return $kind === CheckPayload::NAME_ANONYMOUS ? 'editgate-login-required' : "editgate-login-required-$kind";
	}
}
