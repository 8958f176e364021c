// Rewrites the generated key list of docs/configuration.md from mount/config_keys.cpp (the
// `config-doc` build target): `sitesfs-config-doc docs/configuration.md`.
#include <fstream>
#include <iostream>
#include <sstream>

#include "mount/config_keys.hpp"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: sitesfs-config-doc docs/configuration.md\n";
        return 2;
    }
    std::ostringstream text;
    {
        std::ifstream in(argv[1], std::ios::binary);
        if (!in) {
            std::cerr << "sitesfs-config-doc: cannot read " << argv[1] << "\n";
            return 1;
        }
        text << in.rdbuf();
    }
    try {
        const std::string out = sitesfs::mount::with_config_doc(text.str());
        if (out == text.str()) return 0;
        std::ofstream f(argv[1], std::ios::binary | std::ios::trunc);
        f << out;
        f.close();
        if (!f) {
            std::cerr << "sitesfs-config-doc: cannot write " << argv[1] << "\n";
            return 1;
        }
    } catch (const std::exception& e) {
        std::cerr << "sitesfs-config-doc: " << argv[1] << ": " << e.what() << "\n";
        return 1;
    }
    return 0;
}
