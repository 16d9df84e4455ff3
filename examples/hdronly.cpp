#include "recipes/recipe_models.hpp"
int main(){}
