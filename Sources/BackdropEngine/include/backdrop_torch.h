/* libbackdrop-torch.so implements the C ABI declared in backdrop_engine.h. */
#include "backdrop_engine.h"
