#include <criterion/criterion.h>
Test(s3xml, stub) {}
