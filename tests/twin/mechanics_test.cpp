#include <gtest/gtest.h>

#include "twin/circuit_breaker.hpp"

TEST(CircuitBreaker, Placeholder) {}
