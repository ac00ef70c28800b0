/* Link-only module: importing it links libgstcheck-1.0. The harness declarations come with
 * CGStreamer (see its shim.h for why they are not parsed a second time here). */
