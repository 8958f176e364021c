// Prints docs/fields.md from the schema (the `fields-doc` build target).
#include <iostream>

#include "schemas/site_schema.hpp"

int main() { std::cout << sitesfs::fields_markdown(); }
