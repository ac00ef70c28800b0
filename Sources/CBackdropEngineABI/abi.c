/* Header-only target: the engine ABI shared by the plugin (dlopen side) and the engine. */
