# The dashboard's files, compiled into jm_broker_core as dashboard_assets.c
# (see cmake/EmbedAssets.cmake and broker/dashboard.h). Every .html, .css,
# .js and .svg file in broker/dashboard/ is served; a new one needs no change
# here.
file(GLOB DASHBOARD_ASSET_PATHS CONFIGURE_DEPENDS
     ${CMAKE_CURRENT_SOURCE_DIR}/dashboard/*.html ${CMAKE_CURRENT_SOURCE_DIR}/dashboard/*.css
     ${CMAKE_CURRENT_SOURCE_DIR}/dashboard/*.js ${CMAKE_CURRENT_SOURCE_DIR}/dashboard/*.svg)
set(DASHBOARD_ASSETS "")
foreach(p ${DASHBOARD_ASSET_PATHS})
  get_filename_component(n ${p} NAME)
  list(APPEND DASHBOARD_ASSETS ${n})
endforeach()
list(SORT DASHBOARD_ASSETS)
set(DASHBOARD_ASSETS_C ${CMAKE_CURRENT_BINARY_DIR}/dashboard_assets.c)
add_custom_command(
  OUTPUT ${DASHBOARD_ASSETS_C}
  COMMAND ${CMAKE_COMMAND} -DOUTPUT=${DASHBOARD_ASSETS_C}
          -DBASE=${CMAKE_CURRENT_SOURCE_DIR}/dashboard "-DASSETS=${DASHBOARD_ASSETS}"
          -P ${PROJECT_SOURCE_DIR}/cmake/EmbedAssets.cmake
  DEPENDS ${DASHBOARD_ASSET_PATHS} ${PROJECT_SOURCE_DIR}/cmake/EmbedAssets.cmake
  COMMENT "Embedding the dashboard (${DASHBOARD_ASSETS})"
  VERBATIM)
target_sources(jm_broker_core PRIVATE ${DASHBOARD_ASSETS_C})
