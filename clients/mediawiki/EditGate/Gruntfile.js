/* eslint-env node */
// MediaWiki's message checker, as TorBlock runs it: every message documented in qqq.json, no
// orphan or missing key, and the languages below complete, with every placeholder kept.
// `npm install && npx grunt`; ../tests/banana runs it in CI. Paths are relative to this file,
// so it also runs with its node_modules elsewhere (grunt --base).
'use strict';

const path = require( 'path' );

module.exports = function ( grunt ) {
	const conf = grunt.file.readJSON( path.join( __dirname, 'extension.json' ) );
	const dirs = {};
	for ( const [ name, list ] of Object.entries( conf.MessagesDirs ) ) {
		list.forEach( ( dir, i ) => {
			dirs[ `${ name }-${ i }` ] = path.join( __dirname, dir );
		} );
	}

	grunt.loadNpmTasks( 'grunt-banana-checker' );

	grunt.initConfig( {
		banana: Object.assign( {
			options: {
				requireCompleteTranslationLanguages: [
					'ar', 'ca', 'de', 'es', 'fa', 'fr', 'id', 'pt', 'ru', 'tr', 'uk', 'vi', 'zh-hans', 'zh-hant'
				],
				requireCompletelyUsedParameters: 'error',
				disallowUnusedTranslations: 'error',
				disallowTrailingWhitespaceTranslated: 'error'
			}
		}, dirs )
	} );

	grunt.registerTask( 'test', [ 'banana' ] );
	grunt.registerTask( 'default', 'test' );
};
