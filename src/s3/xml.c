#include "s3/xml.h"
